"""Choosing an upstream node by weight: APISIX's roundrobin, chash and least_conn.

Pure state machines over node indices, built once per route; each pick is O(nodes) at most
(a handful). `exclude` holds the nodes a request has already failed to connect to.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Collection, Sequence
from typing import Final, Protocol

_POINTS_PER_WEIGHT: Final = 40
_MAX_POINTS: Final = 40_000


class Picker(Protocol):
    def pick(self, key: str, exclude: Collection[int]) -> int:
        """A node index not in `exclude` (every node excluded: any node)."""

    def release(self, index: int) -> None:
        """A request that `pick` sent to `index` has ended."""


class SmoothRoundRobin:
    """nginx's smooth weighted round robin: weights 5, 1, 1 give a, a, b, a, c, a, a — spread out,
    not in runs."""

    __slots__ = ("_current", "_weights")

    def __init__(self, weights: Sequence[int]) -> None:
        self._weights = tuple(weights)
        self._current = [0] * len(weights)

    def pick(self, key: str, exclude: Collection[int]) -> int:
        best = -1
        total = 0
        current = self._current
        for index, weight in enumerate(self._weights):
            if index in exclude:
                continue
            current[index] += weight
            total += weight
            if best < 0 or current[index] > current[best]:
                best = index
        if best < 0:
            return 0
        current[best] -= total
        return best

    def release(self, index: int) -> None:
        return None


class ConsistentHash:
    """A hash ring with points in proportion to weight: one key keeps reaching the same node, and
    removing a node moves only its own keys."""

    __slots__ = ("_nodes", "_points")

    def __init__(self, weights: Sequence[int]) -> None:
        scale = max(1, min(_POINTS_PER_WEIGHT, _MAX_POINTS // max(1, sum(weights))))
        ring = sorted(
            (zlib.crc32(f"{index}-{point}".encode()), index)
            for index, weight in enumerate(weights)
            for point in range(weight * scale)
        )
        self._points = [point for point, _ in ring]
        self._nodes = [index for _, index in ring]

    def pick(self, key: str, exclude: Collection[int]) -> int:
        start = bisect.bisect(self._points, zlib.crc32(key.encode("utf-8", "surrogatepass")))
        size = len(self._nodes)
        for step in range(size):
            index = self._nodes[(start + step) % size]
            if index not in exclude:
                return index
        return self._nodes[start % size]

    def release(self, index: int) -> None:
        return None


class LeastConnections:
    """The node with the fewest requests in flight for its weight ((active + 1) / weight)."""

    __slots__ = ("_active", "_next", "_weights")

    def __init__(self, weights: Sequence[int]) -> None:
        self._weights = tuple(weights)
        self._active = [0] * len(weights)
        self._next = 0

    def pick(self, key: str, exclude: Collection[int]) -> int:
        count = len(self._weights)
        best = -1
        best_load = 0.0
        # Ties go round: starting after the last pick spreads an idle route's requests.
        for step in range(count):
            index = (self._next + step) % count
            if index in exclude:
                continue
            load = (self._active[index] + 1) / self._weights[index]
            if best < 0 or load < best_load:
                best, best_load = index, load
        if best < 0:
            best = 0
        self._active[best] += 1
        self._next = (best + 1) % count
        return best

    def release(self, index: int) -> None:
        self._active[index] -= 1


def make_picker(kind: str, weights: Sequence[int]) -> Picker:
    if kind == "chash":
        return ConsistentHash(weights)
    if kind == "least_conn":
        return LeastConnections(weights)
    return SmoothRoundRobin(weights)
