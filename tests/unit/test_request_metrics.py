"""Request metrics: what one request writes, the `unknown` bucket, and one scrape over workers."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fd2.metering import Usage
from fd2.telemetry.metrics import MetricsRegistry

ROUTE = {"project": "acme", "module": "chat", "environment": "dev"}


def samples(registry: MetricsRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(registry.render().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(registry: MetricsRegistry, name: str, **labels: str) -> float | None:
    return samples(registry, name).get(tuple(sorted(labels.items())))


def test_a_finished_request_counts_once_with_its_latency():
    registry = MetricsRegistry()
    metrics = registry.requests
    for _ in range(3):
        metrics.finished("acme", "chat", "dev", "/v1/chat/completions", 200, 0.02)
    metrics.finished("acme", "chat", "dev", "/v1/chat/completions", 502, 1.5)
    endpoint = {**ROUTE, "endpoint": "/v1/chat/completions"}
    assert value(registry, "fd2_requests_total", **endpoint, status="200") == 3
    assert value(registry, "fd2_requests_total", **endpoint, status="502") == 1
    assert value(registry, "fd2_request_duration_seconds_count", **endpoint) == 4
    assert value(registry, "fd2_request_duration_seconds_bucket", **endpoint, le="0.025") == 3


def test_tokens_stream_gauge_and_route_counters():
    registry = MetricsRegistry()
    metrics = registry.requests
    series = metrics.route("acme", "chat", "dev")
    metrics.used(series, Usage(prompt_tokens=12, completion_tokens=5))
    metrics.stream_started(series, 0.04)
    metrics.stream_started(series, 0.05)
    metrics.stream_ended(series)
    metrics.count(metrics.limit_decisions, "acme", "chat", "dev", "limited")
    metrics.count(metrics.auth_failures, "acme", "chat", "dev", "missing")
    metrics.count(metrics.upstream_errors, "acme", "chat", "dev", "gateway_timeout")
    assert value(registry, "fd2_tokens_total", **ROUTE, direction="in") == 12
    assert value(registry, "fd2_tokens_total", **ROUTE, direction="out") == 5
    assert value(registry, "fd2_active_streams", **ROUTE) == 1
    assert value(registry, "fd2_time_to_first_token_seconds_count", **ROUTE) == 2
    metrics.stream_ended(series)
    assert value(registry, "fd2_active_streams", **ROUTE) == 0
    assert value(registry, "fd2_limit_decisions_total", **ROUTE, decision="limited") == 1
    assert value(registry, "fd2_auth_failures_total", **ROUTE, reason="missing") == 1
    assert value(registry, "fd2_upstream_errors_total", **ROUTE, kind="gateway_timeout") == 1


def test_label_children_are_made_once_per_series():
    metrics = MetricsRegistry().requests
    metrics.finished("acme", "chat", "dev", "/v1/models", 200, 0.001)
    first = dict(metrics._series)
    metrics.finished("acme", "chat", "dev", "/v1/models", 200, 0.001)
    assert metrics._series == first


_WORKER = textwrap.dedent(
    """
    import sys
    from fd2.telemetry.metrics import MetricsRegistry
    registry = MetricsRegistry()
    for _ in range(int(sys.argv[1])):
        registry.requests.finished("acme", "chat", "dev", "/v1/models", 200, 0.01)
    registry.requests.route("acme", "chat", "dev").active.inc()
    if sys.argv[2] == "render":
        sys.stdout.write(registry.render().decode())
    """
)


def test_multiprocess_mode_one_render_shows_every_process(tmp_path: Path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(count: int, mode: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", _WORKER, str(count), mode],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    run(3, "quiet")
    text = run(4, "render")
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("fd2_requests_total", "fd2_active_streams"):
                found[sample.name] = found.get(sample.name, 0) + sample.value
    assert found["fd2_requests_total"] == 7
    # livesum: the first process has exited, so its open stream left the sum when the second
    # started (a worker killed outright counts no stream for ever); its requests stay counted.
    assert found["fd2_active_streams"] == 1


async def test_batched_figures_are_what_prometheus_observe_would_write():
    # In a running loop: the durations are added up and written in one flush (by the render).
    """Requests are added up and written once (FLUSH_S); the exposition must be the one
    prometheus-client's own `observe` gives for the same durations, every bucket edge included."""
    durations = [0.0, 0.005, 0.0051, 0.01, 0.3, 2.5, 119.0, 120.0, 121.0, 0.024, 0.025, 1e-9]
    batched = MetricsRegistry()
    for took in durations:
        batched.requests.finished("acme", "chat", "dev", "/v1/models", 200, took)
    direct = MetricsRegistry()
    for took in durations:
        direct.requests.requests.labels("acme", "chat", "dev", "/v1/models", "200").inc()
        direct.requests.latency.labels("acme", "chat", "dev", "/v1/models").observe(took)

    families = ("fd2_requests", "fd2_request_duration")
    got = _figures(batched, families)
    assert got == _figures(direct, families)
    assert value(
        batched, "fd2_requests_total", **ROUTE, endpoint="/v1/models", status="200"
    ) == len(durations)


async def test_figures_added_in_a_running_loop_are_written_by_the_next_scrape():
    registry = MetricsRegistry()
    for _ in range(5):
        registry.requests.finished("acme", "chat", "dev", "/v1/models", 200, 0.01)
    registry.requests.count(registry.requests.limit_decisions, "acme", "chat", "dev", "allowed")
    # Nothing written yet (the flush is a second away) ...
    child = registry.requests.requests.labels("acme", "chat", "dev", "/v1/models", "200")
    assert child._value.get() == 0
    # ... but a scrape writes this worker's figures first.
    assert value(registry, "fd2_requests_total", **ROUTE, endpoint="/v1/models", status="200") == 5
    assert value(registry, "fd2_limit_decisions_total", **ROUTE, decision="allowed") == 1


async def test_figures_are_written_within_a_flush_period_without_a_scrape():
    import asyncio

    from fd2.serving.request_metrics import FLUSH_S

    registry = MetricsRegistry()
    registry.requests.finished("acme", "chat", "dev", "/v1/models", 200, 0.01)
    child = registry.requests.requests.labels("acme", "chat", "dev", "/v1/models", "200")
    assert child._value.get() == 0
    await asyncio.sleep(FLUSH_S + 0.3)
    assert child._value.get() == 1


def test_a_flush_armed_on_a_loop_that_closed_is_armed_again_on_the_next():
    import asyncio

    from fd2.serving.request_metrics import FLUSH_S

    registry = MetricsRegistry()
    child = registry.requests.requests.labels("acme", "chat", "dev", "/v1/models", "200")

    async def one_request() -> None:
        registry.requests.finished("acme", "chat", "dev", "/v1/models", 200, 0.01)

    asyncio.run(one_request())  # armed on a loop that then closes: its timer never fires

    async def another_and_wait() -> None:
        await one_request()
        await asyncio.sleep(FLUSH_S + 0.3)

    asyncio.run(another_and_wait())
    assert child._value.get() == 2


async def test_batched_stream_figures_are_what_prometheus_would_write():
    """First-token times and the active-stream gauge are added up and written once, like
    requests: the exposition must be the one prometheus-client's own calls give."""
    times = [0.0, 0.01, 0.0100001, 0.04, 0.25, 9.9, 30.0, 31.0, 1e-9]
    batched = MetricsRegistry()
    route = batched.requests.route("acme", "chat", "dev")
    for took in times:
        batched.requests.stream_started(route, took)
    for _ in range(4):
        batched.requests.stream_ended(route)
    direct = MetricsRegistry()
    for took in times:
        direct.requests.ttft.labels("acme", "chat", "dev").observe(took)
        direct.requests.active_streams.labels("acme", "chat", "dev").inc()
    for _ in range(4):
        direct.requests.active_streams.labels("acme", "chat", "dev").dec()

    families = ("fd2_time_to_first_token", "fd2_active_streams")
    assert _figures(batched, families) == _figures(direct, families)
    assert value(batched, "fd2_active_streams", **ROUTE) == len(times) - 4


def _figures(
    registry: MetricsRegistry, families: tuple[str, ...]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition's samples of `families` (by name prefix), `_created` stamps left out."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(registry.render().decode())
        for sample in family.samples
        if sample.name.startswith(families) and not sample.name.endswith("_created")
    }
