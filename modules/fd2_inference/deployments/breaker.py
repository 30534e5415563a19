"""A circuit breaker per target: closed, open, half-open (Envoy's outlier ejection, simplified).

Opened by `consecutive_failures` failures in a row, or by an error rate at or above `error_rate`
over the last `window_s` once at least `min_requests` were seen. After `open_s` it lets
`half_open_probes` requests through; one success closes it, one failure opens it again.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Final

from fd2_inference.deployments.config import BreakerSpec

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


class Breaker:
    __slots__ = ("_events", "_failures_in_row", "_opened_at", "_probes", "opened", "spec", "state")

    def __init__(self, spec: BreakerSpec) -> None:
        self.spec = spec
        self.state = CLOSED
        self.opened = 0
        """How many times it opened (for /admin/routes)."""
        self._failures_in_row = 0
        self._opened_at = 0.0
        self._probes = 0
        self._events: deque[tuple[float, bool]] = deque()

    def allows(self, now: float | None = None) -> bool:
        """Whether a request may go to the target now (a half-open probe slot is taken)."""
        if self.state == CLOSED:
            return True
        now = time.monotonic() if now is None else now
        if self.state == OPEN:
            if now - self._opened_at < self.spec.open_s:
                return False
            self.state = HALF_OPEN
            self._probes = 0
        if self._probes < self.spec.half_open_probes:
            self._probes += 1
            return True
        return False

    def would_allow(self, now: float) -> bool:
        """`allows` without taking a probe slot (for choosing among targets)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return now - self._opened_at >= self.spec.open_s
        return self._probes < self.spec.half_open_probes

    def success(self) -> None:
        self._failures_in_row = 0
        self._record(True)
        if self.state != CLOSED:
            self.state = CLOSED
            self._events.clear()

    def failure(self) -> None:
        now = time.monotonic()
        self._failures_in_row += 1
        self._record(False, now)
        if self.state == HALF_OPEN:
            self._open(now)
            return
        if self.state == CLOSED and (
            self._failures_in_row >= self.spec.consecutive_failures or self._rate_exceeded()
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self.state = OPEN
        self.opened += 1
        self._opened_at = now
        self._probes = 0

    def _record(self, ok: bool, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        events = self._events
        events.append((now, ok))
        horizon = now - self.spec.window_s
        while events and events[0][0] < horizon:
            events.popleft()

    def _rate_exceeded(self) -> bool:
        events = self._events
        if len(events) < self.spec.min_requests:
            return False
        failed = sum(1 for _, ok in events if not ok)
        return failed / len(events) >= self.spec.error_rate
