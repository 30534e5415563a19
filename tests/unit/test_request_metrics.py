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
    series.active.inc()
    series.ttft.observe(0.04)
    metrics.count(metrics.limit_decisions, "acme", "chat", "dev", "limited")
    metrics.count(metrics.auth_failures, "acme", "chat", "dev", "missing")
    metrics.count(metrics.upstream_errors, "acme", "chat", "dev", "gateway_timeout")
    assert value(registry, "fd2_tokens_total", **ROUTE, direction="in") == 12
    assert value(registry, "fd2_tokens_total", **ROUTE, direction="out") == 5
    assert value(registry, "fd2_active_streams", **ROUTE) == 1
    assert value(registry, "fd2_time_to_first_token_seconds_count", **ROUTE) == 1
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
