"""Choosing one of an alias's targets: the strategies, each over the targets still eligible.

`pick` gets the candidates (eligible, not yet tried by this request) and returns one of them.
Pure in-memory state, O(targets) per pick.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from fd2_inference.balancer import SmoothRoundRobin
from fd2_inference.deployments.target import Target


class Strategy(Protocol):
    def pick(self, candidates: Sequence[Target], now: float) -> Target: ...


class RoundRobin:
    """Smooth weighted round robin (nginx's), `fd2_inference.balancer`'s, over the candidates."""

    __slots__ = ("_index", "_swrr", "_targets")

    def __init__(self, targets: Sequence[Target]) -> None:
        self._targets = tuple(targets)
        self._index = {id(target): i for i, target in enumerate(targets)}
        self._swrr = SmoothRoundRobin([t.weight for t in targets])

    def pick(self, candidates: Sequence[Target], now: float) -> Target:
        allowed = {self._index[id(t)] for t in candidates}
        excluded = [i for i in range(len(self._targets)) if i not in allowed]
        return self._targets[self._swrr.pick("", excluded)]


class LeastInFlight:
    """Power of two choices: two candidates at random, the one with less in flight per weight."""

    __slots__ = ("_random",)

    def __init__(self) -> None:
        self._random = random.Random()  # noqa: S311 - spreading load, not secrecy

    def pick(self, candidates: Sequence[Target], now: float) -> Target:
        if len(candidates) == 1:
            return candidates[0]
        a, b = self._random.sample(list(candidates), 2)
        return a if a.in_flight / a.weight <= b.in_flight / b.weight else b


class LowestLatency:
    """The lowest EWMA of time to first byte; a target never measured is tried first, and 5% of
    picks go to another candidate so a recovered target is measured again."""

    __slots__ = ("_random",)

    def __init__(self) -> None:
        self._random = random.Random()  # noqa: S311 - spreading load, not secrecy

    def pick(self, candidates: Sequence[Target], now: float) -> Target:
        unmeasured = [t for t in candidates if t.ewma_s is None]
        if unmeasured:
            return unmeasured[0]
        if len(candidates) > 1 and self._random.random() < 0.05:
            return self._random.choice(list(candidates))
        return min(candidates, key=lambda t: t.ewma_s or 0.0)


class MostHeadroom:
    """Usage-based: the most tokens-per-minute headroom left; ties by round robin."""

    __slots__ = ("_ties",)

    def __init__(self, targets: Sequence[Target]) -> None:
        self._ties = RoundRobin(targets)

    def pick(self, candidates: Sequence[Target], now: float) -> Target:
        best = max(t.headroom(now) for t in candidates)
        return self._ties.pick([t for t in candidates if t.headroom(now) == best], now)


class PriorityOrder:
    """The lowest `priority` value among candidates (failover goes down the list); weighted round
    robin among targets of the same priority."""

    __slots__ = ("_ties",)

    def __init__(self, targets: Sequence[Target]) -> None:
        self._ties = RoundRobin(targets)

    def pick(self, candidates: Sequence[Target], now: float) -> Target:
        first = min(t.priority for t in candidates)
        return self._ties.pick([t for t in candidates if t.priority == first], now)


def make_strategy(name: str, targets: Sequence[Target]) -> Strategy:
    if name == "least_in_flight":
        return LeastInFlight()
    if name == "lowest_latency":
        return LowestLatency()
    if name == "usage":
        return MostHeadroom(targets)
    if name == "priority":
        return PriorityOrder(targets)
    return RoundRobin(targets)
