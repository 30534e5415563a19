"""What the steps count: limit decisions (allowed / limited) and auth failures by reason class."""

from __future__ import annotations

import pytest
from pipeline_support import Answering, Recorder, make_request
from test_pipeline_auth import KEY, bearer, policy
from test_request_metrics import value

from fd2.auth.errors import Forbidden
from fd2.auth.identity import Identity
from fd2.limits.errors import RateLimited
from fd2.limits.gcra import LocalLimiter
from fd2.limits.plan import LimitPlan
from fd2.limits.specs import specs_for
from fd2.pipeline.auth import Authenticate, Authorise
from fd2.pipeline.limits import Limits
from fd2.serving.errors import Unauthorized, UpstreamTimeout
from fd2.telemetry.metrics import MetricsRegistry

ROUTE = {"project": "acme", "module": "chat", "environment": "development"}


async def test_limit_decisions_are_counted_allowed_and_limited() -> None:
    registry = MetricsRegistry()  # the worker's: the steps count into it
    plan = LimitPlan(
        LocalLimiter(), specs_for("route:acme:chat:development", {"requests_per_minute": 1})
    )
    step = Limits(plan, None)
    await step(make_request({}), Recorder(), Answering())
    with pytest.raises(RateLimited):
        await step(make_request({}), Recorder(), Answering())
    assert value(registry, "fd2_limit_decisions_total", **ROUTE, decision="allowed") == 1
    assert value(registry, "fd2_limit_decisions_total", **ROUTE, decision="limited") == 1


async def test_auth_failures_are_counted_by_reason_class() -> None:
    registry = MetricsRegistry()
    step = Authenticate(policy())
    for headers in ([], bearer(KEY + "x"), bearer(KEY + "y")):
        with pytest.raises(Unauthorized):
            await step(make_request({}, headers=headers), Recorder(), Answering())
    request = make_request({}, path="/v1/other")
    request.identity = Identity("key:k", endpoints=frozenset({"/v1/chat/completions"}))
    with pytest.raises(Forbidden):
        await Authorise(None)(request, Recorder(), Answering())
    assert value(registry, "fd2_auth_failures_total", **ROUTE, reason="missing") == 1
    assert value(registry, "fd2_auth_failures_total", **ROUTE, reason="invalid") == 2
    assert value(registry, "fd2_auth_failures_total", **ROUTE, reason="forbidden") == 1


async def test_an_upstream_error_behind_the_limits_step_is_left_to_the_core() -> None:
    """The step neither renders nor counts it: the core does both, once (with the step's
    headers, in the module's error shape)."""
    registry = MetricsRegistry()
    plan = LimitPlan(
        LocalLimiter(), specs_for("route:acme:chat:development", {"requests_per_minute": 5})
    )

    async def failing(request, send):
        raise UpstreamTimeout("The upstream timed out.")

    send = Recorder()
    with pytest.raises(UpstreamTimeout):
        await Limits(plan, None)(make_request({}), send, failing)
    assert not send.messages
    assert not value(registry, "fd2_upstream_errors_total", **ROUTE, kind="gateway_timeout")
