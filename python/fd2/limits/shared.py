"""The Redis-backed limiter: one atomic script call (EVALSHA) per check, shared by every replica.

When Redis cannot be reached, or does not answer within the client's socket timeout (a hung
server), the configured policy applies: `open` decides with this process's own buckets (the same
limits, per replica) and `closed` refuses with 503. Either is logged once when it starts and once
when Redis answers again. After a failure Redis is left alone for `RETRY_AFTER_FAILURE_S`: one
request per second probes it, every other one decides at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any, Final

from fd2.limits.gcra import Decision, LocalLimiter
from fd2.limits.specs import LimitSpec
from fd2.serving.errors import ServiceUnavailable

_log = logging.getLogger("fd2.limits")
FAILURE_POLICIES: Final = ("open", "closed")
RETRY_AFTER_FAILURE_S: Final = 1.0
"""After a failure Redis is left alone this long: a request never waits on a server that is
known to be down (at most one request per second probes it)."""


def _script_text() -> str:
    return resources.files("fd2.limits").joinpath("shared_store.lua").read_text("utf-8")


class SharedLimiter:
    """GCRA buckets in Redis, keyed under `prefix`."""

    def __init__(self, redis: Any, *, on_failure: str = "open", prefix: str = "fd2:rl:") -> None:
        if on_failure not in FAILURE_POLICIES:
            raise ValueError(f"on_failure must be one of {FAILURE_POLICIES}")
        self._redis = redis
        self._script = redis.register_script(_script_text())
        self._prefix = prefix
        self._fail_open = on_failure == "open"
        self._fallback = LocalLimiter()
        self._degraded = False
        self._retry_at = 0.0

    async def acquire(self, specs: Sequence[LimitSpec], costs: Sequence[int]) -> Decision:
        if self._degraded and not self._may_probe():
            return self._without_redis(specs, costs)  # known down: no request waits on it
        try:
            out = await self._script(
                keys=self._keys(specs), args=self._args("acquire", specs, costs)
            )
        except Exception as exc:  # any Redis failure: connection, timeout, script error
            self._went_down(exc)
            return self._without_redis(specs, costs)
        self._came_back()
        values = [int(value) for value in out]
        return Decision(bool(values[0]), values[1], values[2::2], values[3::2])

    def _without_redis(self, specs: Sequence[LimitSpec], costs: Sequence[int]) -> Decision:
        """The configured policy while Redis is away: per-process buckets, or 503."""
        if not self._fail_open:
            raise ServiceUnavailable(
                "Rate limiting is unavailable; try again shortly.", code="rate_limiter_down"
            )
        return self._fallback.acquire_now(specs, costs)

    async def adjust(self, specs: Sequence[LimitSpec], deltas: Sequence[int]) -> None:
        if self._degraded and not self._may_probe():
            self._fallback.adjust_now(specs, deltas)
            return
        try:
            await self._script(keys=self._keys(specs), args=self._args("adjust", specs, deltas))
        except Exception as exc:
            self._went_down(exc)
            self._fallback.adjust_now(specs, deltas)
        else:
            self._came_back()

    def _keys(self, specs: Sequence[LimitSpec]) -> list[str]:
        prefix = self._prefix
        return [prefix + spec.key for spec in specs]

    @staticmethod
    def _args(mode: str, specs: Sequence[LimitSpec], amounts: Sequence[int]) -> list[object]:
        args: list[object] = [mode]
        for spec, amount in zip(specs, amounts, strict=True):
            args += (spec.interval_us, spec.limit * spec.interval_us, amount)
        return args

    def _may_probe(self) -> bool:
        """While degraded: True for the one call that may try Redis again once the pause is over
        (the next pause starts at once, so concurrent requests do not all wait on the probe)."""
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + RETRY_AFTER_FAILURE_S
        return True

    def _went_down(self, exc: Exception) -> None:
        self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
        if not self._degraded:
            self._degraded = True
            _log.error(
                "rate limiting: Redis unreachable (%s); %s",
                type(exc).__name__,
                "deciding with per-process limits"
                if self._fail_open
                else "refusing rate-limited requests",
            )

    def _came_back(self) -> None:
        if self._degraded:
            self._degraded = False
            _log.warning("rate limiting: Redis reachable again; limits are shared again")

    async def aclose(self) -> None:
        await self._redis.aclose()
