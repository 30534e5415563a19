"""The GCRA decision for a set of buckets, all or nothing, and the in-process limiter built on it.

Each bucket stores its theoretical arrival time (TAT). A request costing c units is admitted when,
for every bucket, `max(TAT, now) + c·interval - capacity <= now`; then every TAT moves forward
together. A refused request changes nothing. `shared_store.lua` is the same algorithm for Redis.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fd2._native import GcraBuckets, GcraPlan
from fd2.limits.specs import LimitSpec

_monotonic_ns = time.monotonic_ns


def now_us() -> int:
    """The limiters' clock: monotonic µs."""
    return _monotonic_ns() // 1000


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
    """The decision and the TATs to store if admitted: the reference the in-process limiter
    (`fd2._native.GcraBuckets`) and the Redis script (`shared_store.lua`) compute alike
    (tests/unit/test_limits_gcra.py checks the native one against it)."""
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
    """GCRA buckets in this process's memory: exact for one process, per replica otherwise.

    The buckets live in `fd2._native.GcraBuckets` (the same arithmetic as `decide`, in one call
    per request instead of ~40k instructions of Python loops)."""

    def __init__(self) -> None:
        self._buckets = GcraBuckets()

    async def acquire(self, specs: Sequence[LimitSpec], costs: Sequence[int]) -> Decision:
        return self.acquire_now(specs, costs)

    def acquire_now(self, specs: Sequence[LimitSpec], costs: Sequence[int]) -> Decision:
        allowed, retry, remaining, reset = self._buckets.acquire(tuple(specs), costs, now_us())
        return Decision(allowed, retry, remaining, reset)

    async def adjust(self, specs: Sequence[LimitSpec], deltas: Sequence[int]) -> None:
        self.adjust_now(specs, deltas)

    def plan(self, specs: tuple[LimitSpec, ...]) -> GcraPlan:
        """These buckets, fixed for a route, planned once: a request is then one native call
        (`GcraPlan.admit`) that also renders the x-ratelimit-* headers. The plan and
        `acquire_now` share the buckets' state."""
        return self._buckets.plan(specs)

    def adjust_now(self, specs: Sequence[LimitSpec], deltas: Sequence[int]) -> None:
        self._buckets.adjust(tuple(specs), deltas, now_us())
