"""Which steps each endpoint of a route gets, decided when the route is compiled."""

from __future__ import annotations

from pipeline_support import Answering, FixedMeter

from fd2.auth.policy import AuthPolicy
from fd2.limits.gcra import LocalLimiter
from fd2.limits.plan import LimitPlan
from fd2.limits.specs import specs_for
from fd2.pipeline.auth import Authenticate, Authorise
from fd2.pipeline.limits import Limits
from fd2.pipeline.route_steps import RouteSteps

OPEN = AuthPolicy(mode="none", project="acme", module="chat", environment="development")
KEYED = AuthPolicy(mode="api_key", project="acme", module="chat", environment="development")


def limits(**values: int) -> LimitPlan:
    return LimitPlan(LocalLimiter(), specs_for("route:acme:chat:development", values))


def test_an_open_route_without_limits_keeps_the_modules_handlers() -> None:
    steps = RouteSteps(OPEN, limits())
    handlers = {"/v1/chat/completions": {"POST": Answering()}}
    assert steps.empty and steps.apply(handlers, {}) is handlers


def test_the_steps_in_order() -> None:
    meter = FixedMeter()
    # limits too: a caller's key or token may carry its own; authorising runs inside
    # authenticating (one step fewer for a caller it cannot refuse)
    keyed = RouteSteps(KEYED, limits()).steps(meter)
    assert [type(s) for s in keyed] == [Authenticate, Limits]
    assert isinstance(keyed[0]._authorise, Authorise)  # type: ignore[attr-defined]
    assert keyed[0]._authorise._meter is meter  # type: ignore[attr-defined]
    assert [type(s) for s in RouteSteps(OPEN, limits(requests_per_minute=1)).steps(meter)] == [
        Limits
    ]
    assert [type(s) for s in RouteSteps(KEYED, limits(requests_per_minute=1)).steps(None)] == [
        Authenticate,
        Limits,
    ]


def test_each_endpoint_is_composed_with_its_own_meter() -> None:
    chat, embeddings = FixedMeter(), FixedMeter()
    handler = Answering()
    handlers = {
        "/v1/chat/completions": {"POST": handler},
        "/v1/embeddings": {"POST": handler},
        "/v1/models": {"GET": handler},
    }
    composed = RouteSteps(KEYED, limits()).apply(
        handlers, {"/v1/chat/completions": chat, "/v1/embeddings": embeddings}
    )
    assert set(composed) == set(handlers)
    for path, meter in (
        ("/v1/chat/completions", chat),
        ("/v1/embeddings", embeddings),
        ("/v1/models", None),
    ):
        (bound,) = composed[path].values()
        assert bound is not handler
        # authenticate (authorising inside) → limits → handler, each bound to the next
        assert bound.func.__self__._authorise._meter is meter
        limits_step = bound.keywords["call_next"]
        assert limits_step.func.__self__._meter is meter
        assert limits_step.keywords["call_next"] is handler
