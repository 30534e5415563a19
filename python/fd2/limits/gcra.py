"""The GCRA decision for a set of buckets, all or nothing, and the in-process limiter built on it.

Each bucket stores its theoretical arrival time (TAT). A request costing c units is admitted when,
for every bucket, `max(TAT, now) + c·interval - capacity <= now`; then every TAT moves forward
together. A refused request changes nothing. `shared_store.lua` is the same algorithm for Redis.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fd2.limits.specs import LimitSpec

_PRUNE_AT = 100_000
_monotonic_ns = time.monotonic_ns


class Decision:
    """The outcome of one check: admitted or not, and each bucket's state after it."""

    __slots__ = ("allowed", "remaining", "reset_us", "retry_after_us")

    def __init__(
        self, allowed: bool, retry_after_us: int, remaining: list[int], reset_us: list[int]
    ) -> None:
        self.allowed = allowed
        self.retry_after_us = retry_after_us
        self.remaining = remaining
        self.reset_us = reset_us


def decide(
    tats: Sequence[int], specs: Sequence[LimitSpec], costs: Sequence[int], now: int
) -> tuple[Decision, list[int]]:
    """The decision and the TATs to store if admitted (pure: the in-process limiter's; the Redis
    script computes the same). Plain loops, no comprehensions: it runs on every limited request,
    and a comprehension is a call of its own on Python 3.11."""
    allowed = True
    retry = 0
    starts = []
    new_tats = []
    for stored, spec, cost in zip(tats, specs, costs, strict=True):
        tat = stored if stored > now else now
        interval = spec.interval_us
        new_tat = tat + cost * interval
        wait = new_tat - spec.limit * interval - now  # the bucket's capacity, in µs
        if wait > 0:
            allowed = False
            if wait > retry:
                retry = wait
        starts.append(tat)
        new_tats.append(new_tat)
    remaining = []
    reset = []
    for spec, tat in zip(specs, new_tats if allowed else starts, strict=True):
        interval = spec.interval_us
        left = (spec.limit * interval - (tat - now)) // interval
        remaining.append(left if left > 0 else 0)
        reset.append(tat - now)
    return Decision(allowed, retry, remaining, reset), new_tats


def adjusted(stored: int, spec: LimitSpec, delta: int, now: int) -> int:
    """A TAT after charging `delta` more units (negative: giving units back)."""
    return (
        max(stored, now) + delta * spec.interval_us
        if delta > 0
        else max(now, stored + delta * spec.interval_us)
    )


class LocalLimiter:
    """GCRA buckets in this process's memory: exact for one process, per replica otherwise."""

    def __init__(self) -> None:
        self._tats: dict[str, int] = {}

    @staticmethod
    def now_us() -> int:
        return _monotonic_ns() // 1000

    async def acquire(self, specs: Sequence[LimitSpec], costs: Sequence[int]) -> Decision:
        return self.acquire_now(specs, costs)

    def acquire_now(self, specs: Sequence[LimitSpec], costs: Sequence[int]) -> Decision:
        now = _monotonic_ns() // 1000
        tats = self._tats
        stored = []
        for spec in specs:  # a loop: a comprehension is a call of its own on Python 3.11
            stored.append(tats.get(spec.key, now))  # noqa: PERF401
        decision, new_tats = decide(stored, specs, costs, now)
        if decision.allowed:
            for spec, tat in zip(specs, new_tats, strict=True):
                tats[spec.key] = tat
            if len(tats) > _PRUNE_AT:
                self._prune(now)
        return decision

    async def adjust(self, specs: Sequence[LimitSpec], deltas: Sequence[int]) -> None:
        self.adjust_now(specs, deltas)

    def adjust_now(self, specs: Sequence[LimitSpec], deltas: Sequence[int]) -> None:
        now = self.now_us()
        for spec, delta in zip(specs, deltas, strict=True):
            if delta:
                self._tats[spec.key] = adjusted(self._tats.get(spec.key, now), spec, delta, now)

    def _prune(self, now: int) -> None:
        # A TAT in the past is a full bucket: the same as no entry at all.
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
