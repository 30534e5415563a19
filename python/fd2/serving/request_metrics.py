"""Per-request metrics: requests, latency, time to first token, tokens, active streams, limit
decisions, auth failures and upstream errors, shown by `GET /metrics` for every worker at once.

`fd2 serve` sets `PROMETHEUS_MULTIPROC_DIR` to a fresh directory per server start before its
workers start: prometheus-client then keeps each value in a memory-mapped file per worker, and
one scrape (whichever worker answers it) reads them all (`metrics.py`). Without it (tests, an
embedded app) the same metrics are per process.

Cost on the hot path: the label children of one (route, endpoint, status) are looked up once and
kept in a dict, and a finished request (or a stream's first chunk and end) only adds to plain
counters there (a dict lookup, three
additions, one `bisect`). They are written to prometheus-client's values at most once a
second (`FLUSH_S`, one timer armed when the first figure is added), before this worker renders a
scrape, and when the worker stops: one write per series and second instead of four locked,
memory-mapped writes per request. So a scrape answered by one worker shows another worker's
latest second a second late; a worker killed outright loses its last second of figures.
Cardinality is bounded by the route table: a request that matched no route is counted under one
`unknown` series, and the endpoint label is a path the route declares (else `unknown`).
"""

from __future__ import annotations

import asyncio
import atexit
import os
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.multiprocess import mark_process_dead

from fd2.metering import Usage
from fd2.serving.errors import UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    from fd2.serving.request import Request

UNKNOWN: Final = "unknown"
UPSTREAM_ERRORS: Final = (UpstreamError, UpstreamTimeout)
"""The errors counted as upstream errors, by their code, when they reach the client."""
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_ROUTE: Final = ("project", "module", "environment")
_LATENCY_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
FLUSH_S: Final = 1.0
"""How long a figure may wait before it is written where scrapes read it."""
_TTFT_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def multiprocess() -> bool:
    """Whether values are shared between the workers (set before prometheus-client is used)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def _share_values() -> None:
    """prometheus-client picks its value class when first imported; Granian forks its workers
    from a parent that imported it before `fd2 serve` set the directory, so pick it again (before
    any metric of this worker is made)."""
    if multiprocess():
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        _forget_dead_workers(os.environ[MULTIPROC_ENV])


def _forget_dead_workers(directory: str) -> None:
    """A worker killed outright (then respawned) never took its live gauges out of the sum: the
    next worker to start does. Its counters stay, as totals over the server's life."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, someone else's
            pass


class _Series:
    """The children of one (route, endpoint, status), and what finished requests added to them
    since the last flush."""

    __slots__ = ("buckets", "count", "latency", "requests", "total")

    def __init__(self, requests: Counter, latency: Histogram) -> None:
        self.requests = requests
        self.latency = latency
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last: +Inf

    def flush(self) -> None:
        if not self.count:
            return
        self.requests.inc(self.count)
        _add_observations(self.latency, self.total, self.buckets)
        self.count = 0
        self.total = 0.0


def _add_observations(histogram: Histogram, total: float, buckets: list[int]) -> None:
    """Adds observations counted per bucket (and their sum) to a histogram child, and zeroes
    the counts. prometheus-client has no call to add many observations at once: its sum and
    (non-cumulative) bucket values are written directly, as its `observe` writes them
    (tests/unit/test_request_metrics.py checks the two agree)."""
    histogram._sum.inc(total)
    for index, added in enumerate(buckets):
        if added:
            histogram._buckets[index].inc(added)
            buckets[index] = 0


class _RouteSeries:
    """The children of one route (project, module, environment), status aside, and what streams
    added to its first-token histogram and active-stream gauge since the last flush."""

    __slots__ = (
        "active",
        "ended",
        "started",
        "tokens_in",
        "tokens_out",
        "ttft",
        "ttft_buckets",
        "ttft_total",
    )

    def __init__(self, metrics: RequestMetrics, labels: tuple[str, str, str]) -> None:
        self.ttft = metrics.ttft.labels(*labels)
        self.active = metrics.active_streams.labels(*labels)
        self.tokens_in = metrics.tokens.labels(*labels, "in")
        self.tokens_out = metrics.tokens.labels(*labels, "out")
        self.started = 0
        self.ended = 0
        self.ttft_total = 0.0
        self.ttft_buckets = [0] * (len(_TTFT_BUCKETS) + 1)  # the last: +Inf

    def flush(self) -> None:
        """As `_Series.flush`: the streams begun (with their first-token times) and ended."""
        if self.started:
            _add_observations(self.ttft, self.ttft_total, self.ttft_buckets)
            self.ttft_total = 0.0
        if self.started != self.ended:
            self.active.inc(self.started - self.ended)
        self.started = self.ended = 0


class RequestMetrics:
    """The request metrics of one worker, registered in `registry` (a private one when values
    are shared between workers: the scrape reads them from the files, not from the objects)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        _share_values()
        self.requests = Counter(
            "fd2_requests",
            "Requests answered, by route, endpoint and HTTP status",
            [*_ROUTE, "endpoint", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "fd2_request_duration_seconds",
            "Time from the request's arrival to the end of its answer (streams included)",
            [*_ROUTE, "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "fd2_time_to_first_token_seconds",
            "Time from a streamed request's arrival to the first chunk of its answer body",
            list(_ROUTE),
            buckets=_TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "fd2_tokens",
            "Tokens used, as the module reported them (direction: in = prompt, out = completion)",
            [*_ROUTE, "direction"],
            registry=registry,
        )
        self.active_streams = Gauge(
            "fd2_active_streams",
            "Streamed answers being sent now",
            list(_ROUTE),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.limit_decisions = Counter(
            "fd2_limit_decisions",
            "Rate-limit decisions taken by the limits step (allowed or limited)",
            [*_ROUTE, "decision"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "fd2_auth_failures",
            "Requests refused by the auth steps, by reason (missing, invalid, forbidden)",
            [*_ROUTE, "reason"],
            registry=registry,
        )
        self.upstream_errors = Counter(
            "fd2_upstream_errors",
            "Failed upstream exchanges, by kind (the error code the client got: bad_gateway, "
            "gateway_timeout, upstream_stream_incomplete, ...)",
            [*_ROUTE, "kind"],
            registry=registry,
        )
        self.cache_lookups = Counter(
            "fd2_cache_lookups",
            "Response cache outcomes (hit, miss, bypass); hit ratio: hit / (hit + miss)",
            [*_ROUTE, "result"],
            registry=registry,
        )
        self.pii_matches = Counter(
            "fd2_pii_matches",
            "PII found by the redaction step, by kind (request and answer together)",
            [*_ROUTE, "kind"],
            registry=registry,
        )
        self.audit_dropped = Counter(
            "fd2_audit_dropped",
            "Audit records not written: the queue was full or a sink failed (by sink)",
            ["sink"],
            registry=registry,
        )
        self._series: dict[tuple[str, str, str, str, int], _Series] = {}
        self._routes: dict[tuple[str, str, str], _RouteSeries] = {}
        self._counters: dict[tuple[Counter, str, str, str, str], list[Any]] = {}
        """Per route counter child: [the child, events not written yet]."""
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        """The loop a flush is armed on (None: none is)."""
        atexit.register(self.flush)  # a worker's last second, when it exits normally

    def route(self, project: str, module: str, environment: str) -> _RouteSeries:
        key = (project, module, environment)
        series = self._routes.get(key)
        if series is None:
            series = self._routes[key] = _RouteSeries(self, key)
        return series

    def finished(
        self, project: str, module: str, environment: str, endpoint: str, status: int, took: float
    ) -> None:
        """One request answered (the labels are the route's, or `unknown` without a route)."""
        key = (project, module, environment, endpoint, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(
                self.requests.labels(project, module, environment, endpoint, str(status)),
                self.latency.labels(project, module, environment, endpoint),
            )
        series.count += 1
        series.total += took
        series.buckets[bisect_left(_LATENCY_BUCKETS, took)] += 1
        if self._flush_loop is None or self._flush_loop.is_closed():
            self._arm_flush()

    def stream_started(self, route: _RouteSeries, first_token_s: float) -> None:
        """A streamed answer sent its first chunk `first_token_s` after the request arrived:
        one more active stream, one first-token time (both written at the next flush)."""
        route.started += 1
        route.ttft_total += first_token_s
        route.ttft_buckets[bisect_left(_TTFT_BUCKETS, first_token_s)] += 1
        if self._flush_loop is None or self._flush_loop.is_closed():
            self._arm_flush()

    def stream_ended(self, route: _RouteSeries) -> None:
        route.ended += 1
        if self._flush_loop is None or self._flush_loop.is_closed():
            self._arm_flush()

    def used(self, route: _RouteSeries, usage: Usage) -> None:
        if usage.prompt_tokens:
            route.tokens_in.inc(usage.prompt_tokens)
        if usage.completion_tokens:
            route.tokens_out.inc(usage.completion_tokens)

    def count(
        self, counter: Counter, project: str, module: str, environment: str, value: str
    ) -> None:
        """One event of a route counter (limit decisions, auth failures, upstream errors)."""
        key = (counter, project, module, environment, value)
        pending = self._counters.get(key)
        if pending is None:
            pending = self._counters[key] = [counter.labels(project, module, environment, value), 0]
        pending[1] += 1
        if self._flush_loop is None or self._flush_loop.is_closed():
            self._arm_flush()

    def flush(self) -> None:
        """Write what was added since the last flush where scrapes read it."""
        self._flush_loop = None
        for series in self._series.values():
            series.flush()
        for route in self._routes.values():
            route.flush()
        for pending in self._counters.values():
            if pending[1]:
                pending[0].inc(pending[1])
                pending[1] = 0

    def _arm_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a tool, a test): written at once
            self.flush()
            return
        self._flush_loop = loop  # a loop that closes before the timer fires is armed anew
        loop.call_later(FLUSH_S, self.flush)


_current: RequestMetrics | None = None


def current() -> RequestMetrics | None:
    """The worker's request metrics, once its metrics registry made them (None before: steps
    and modules built outside a running gateway count nothing)."""
    return _current


def upstream_failed(request: Request, code: str) -> None:
    """The core hook a module calls when its upstream fails after the answer started (a broken
    stream): the failures before that are raised as errors and counted where they are rendered
    (the core's dispatch, or `fd2.serving.module_calls` for a call in process). `code` is the
    error's code (a constant of the module's, never request data)."""
    metrics = _current
    if metrics is not None:
        metrics.count(
            metrics.upstream_errors, request.project, request.module, request.environment, code
        )


def install(metrics: RequestMetrics) -> None:
    global _current
    _current = metrics
