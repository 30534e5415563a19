"""Deployments under tracing: each upstream attempt is a client span of the request's trace,
and each target receives a `traceparent` of that trace (a failed attempt and the one after)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .conftest import Service, free_port
from .hardening import start_fd2_with, wait_for
from .routing_support import routing_manifest, target
from .test_tracing import TRACE, Collector, collector  # noqa: F401 - the fixture

CLIENT_SPAN = "c8be7c7270314442"


def test_every_attempt_is_a_span_of_the_request_trace(
    tmp_path: Path,
    standin: Service,
    collector: Collector,  # noqa: F811 - the fixture imported above
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    dead = f"127.0.0.1:{free_port()}"
    deployments = {
        "traced": {
            "strategy": "priority",
            "targets": [
                target(dead, "gpt-4o-mini", name="dead", priority=0),
                target(standin.address, "gpt-4o-mini", name="alive", priority=1),
            ],
        }
    }
    (manifests / "routing.json").write_text(json.dumps(routing_manifest(deployments)))
    server = start_fd2_with(
        manifests, tmp_path, "--otel-endpoint", collector.url, name="fd2-routing-tracing"
    )
    try:
        answer = httpx.post(
            server.url + "/routing/chat/v1/chat/completions",
            json={"model": "traced", "messages": [{"role": "user", "content": "hi"}]},
            headers={"traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-fd2-attempts"] == "2"
        recent = httpx.get(f"http://{standin.address}/_standin/requests", timeout=5).json()
        carried = [entry["headers"].get("traceparent") for entry in recent]
        assert any(value and value.split("-")[1] == TRACE for value in carried), carried
    finally:
        server.stop()
    assert wait_for(lambda: len(collector.spans) >= 3, timeout=10), server.output()
    spans = collector.spans
    attempts = [span for span in spans if span.name == "upstream POST"]  # type: ignore[attr-defined]
    assert len(attempts) == 2
    assert all(span.trace_id.hex() == TRACE for span in attempts)  # type: ignore[attr-defined]
