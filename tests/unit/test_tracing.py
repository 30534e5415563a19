"""Tracing with the otel extra: a server span per request (the client's trace continued), a span
per step, a client span per upstream attempt whose traceparent goes upstream; none when off."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pipeline_support import Answering, Recorder, make_request

from fd2.auth.policy import AuthPolicy
from fd2.limits.gcra import LocalLimiter
from fd2.limits.plan import LimitPlan
from fd2.limits.specs import specs_for
from fd2.metering import Cost
from fd2.pipeline.route_steps import RouteSteps
from fd2.telemetry import tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    on = tracing.Tracing("http://unused.invalid/v1/traces", "fd2-test", exporter=exporter)
    tracing.install(on)
    yield on, exporter
    tracing.install(None)


async def test_a_request_span_continues_the_clients_trace_with_steps_and_upstream(spans):
    on, exporter = spans
    headers = [(b"traceparent", f"00-{TRACE}-{PARENT}-01".encode())]
    span = on.start_request(headers, "POST")
    assert span.trace_id == TRACE
    span.route("acme", "chat", "development", "/v1/chat/completions")
    plan = LimitPlan(
        LocalLimiter(), specs_for("route:acme:chat:development", {"requests_per_minute": 5})
    )
    steps = RouteSteps(
        AuthPolicy(mode="none", project="acme", module="chat", environment="development"), plan
    )
    sent: list[dict[str, str]] = []

    async def handler(request, send):
        with on.upstream("POST", "https://user:pw@api.example.com:8443/v1?key=k") as trace_headers:
            sent.append(trace_headers)
            on.answered(200)
        await Answering()(request, send)

    composed = steps.apply({"/v1/chat/completions": {"POST": handler}}, {})
    request = make_request({})
    request.cost = Cost(model="gpt-x", prompt_tokens=3, completion_bound=5)
    await composed["/v1/chat/completions"]["POST"](request, Recorder())
    span.end(200, request)

    finished = {item.name: item for item in exporter.get_finished_spans()}
    server = finished["acme/chat /v1/chat/completions"]
    assert format(server.context.trace_id, "032x") == TRACE
    assert format(server.parent.span_id, "016x") == PARENT
    assert server.attributes["fd2.project"] == "acme"
    assert server.attributes["fd2.environment"] == "development"
    assert server.attributes["gen_ai.request.model"] == "gpt-x"
    assert server.attributes["http.response.status_code"] == 200
    limits = finished["fd2.step.limits"]
    assert limits.parent.span_id == server.context.span_id
    upstream = finished["upstream POST"]
    assert upstream.parent.span_id == limits.context.span_id
    assert upstream.attributes["server.address"] == "api.example.com"
    assert "url.full" not in upstream.attributes  # a URL may carry a key
    assert not any("pw" in str(value) for value in upstream.attributes.values())
    # The upstream gets the attempt's own span as its parent, in the same trace.
    (carried,) = sent
    _version, trace_id, parent_id, _ = carried["traceparent"].split("-")
    assert (trace_id, parent_id) == (TRACE, format(upstream.context.span_id, "016x"))


def test_off_imports_no_opentelemetry():
    """fd2 imports none of it (the Redis client may, for its own instrumentation, when the
    package is installed: that is counted out)."""
    code = (
        "import sys, redis, redis.asyncio;"
        "before = set(sys.modules);"
        "import fd2.serving.app, fd2.pipeline.route_steps, fd2_inference, fd2.control.runtime;"
        "print(sorted(n for n in set(sys.modules) - before if n.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_steps_are_not_wrapped_when_off():
    plan = LimitPlan(
        LocalLimiter(), specs_for("route:acme:chat:development", {"requests_per_minute": 5})
    )
    steps = RouteSteps(
        AuthPolicy(mode="none", project="acme", module="chat", environment="development"), plan
    ).steps(None)
    assert [type(step).__name__ for step in steps] == ["Limits"]
