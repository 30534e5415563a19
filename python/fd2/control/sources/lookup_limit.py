"""A token bucket for Control Tower lookups of projects that are not cached.

Single-flight and the negative cache stop repeats of one name; a flood of ever-new random names
would still reach the Control Tower once each. This caps those lookups per second for the worker.
"""

from __future__ import annotations

import time


class LookupLimiter:
    def __init__(self, rate_per_s: float, burst: float | None = None) -> None:
        self.rate = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s)
        self._tokens = self.burst
        self._at = time.monotonic()
        self.refused = 0

    def try_acquire(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.refused += 1
        return False
