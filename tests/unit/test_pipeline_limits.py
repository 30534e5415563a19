"""The limits step alone: buckets taken before the handler, headers on every answer, 429, and
token reservations settled with the usage the module reports (or its estimate)."""

from __future__ import annotations

import pytest
from pipeline_support import Answering, FixedMeter, Recorder, Served, make_request

from fd2.auth.identity import Identity
from fd2.limits.errors import RateLimited
from fd2.limits.gcra import LocalLimiter, decide
from fd2.limits.plan import LimitPlan, credential_specs
from fd2.limits.specs import LimitSpec, specs_for
from fd2.metering import Usage
from fd2.pipeline.limits import Limits, duration, ratelimit_headers, retry_after
from fd2.serving.errors import UpstreamError

TOKENS = {"tokens_per_minute": 1000}
SECOND = 1_000_000


def plan(limits: dict[str, int], **dynamic: tuple[LimitSpec, ...]) -> LimitPlan:
    return LimitPlan(LocalLimiter(), specs_for("route:acme:chat:development", limits), **dynamic)


def remaining_tokens(step_plan: LimitPlan) -> int:
    """What the token bucket holds now (a zero-cost check takes nothing)."""
    limiter = step_plan.limiter
    assert isinstance(limiter, LocalLimiter)
    specs = step_plan.static_token_specs
    return limiter.acquire_now(specs, [0] * len(specs)).remaining[0]


async def run(step: Limits, handler: Answering, **request_options) -> tuple[Recorder, object]:
    request = make_request({"model": "m"}, **request_options)
    send = Served(request)
    await step(request, send, handler)
    return send, request


async def test_headers_then_429_with_retry_after() -> None:
    step = Limits(plan({"requests_per_minute": 2}), None)
    answers = [await run(step, Answering()) for _ in range(2)]
    assert [send.headers[b"x-ratelimit-remaining-requests"] for send, _ in answers] == [
        b"1",
        b"0",
    ]
    with pytest.raises(RateLimited) as refused:
        await run(step, Answering())
    assert refused.value.error_type == "requests"
    headers = dict(refused.value.extra_headers())
    assert headers[b"x-ratelimit-limit-requests"] == b"2"
    assert int(headers[b"retry-after"]) >= 1


async def test_the_reported_usage_settles_the_reservation() -> None:
    step_plan = plan(TOKENS)
    meter = FixedMeter(prompt=10, bound=90)
    handler = Answering(usage=Usage(prompt_tokens=10, completion_tokens=5, cached_tokens=4))
    send, request = await run(Limits(step_plan, meter), handler)
    assert request.metered and meter.estimates == 1
    assert send.headers[b"x-ratelimit-remaining-tokens"] == b"900"  # 100 reserved up front
    assert 985 <= remaining_tokens(step_plan) <= 986  # 15 used (and a little refilled)


async def test_a_module_that_reports_nothing_is_charged_its_estimate() -> None:
    step_plan = plan(TOKENS)
    await run(Limits(step_plan, FixedMeter(prompt=10, bound=90)), Answering())
    assert 900 <= remaining_tokens(step_plan) <= 901  # never refunded to zero


async def test_a_failed_call_gives_the_reservation_back() -> None:
    step_plan = plan(TOKENS)
    await run(Limits(step_plan, FixedMeter(prompt=10, bound=90)), Answering(status=502))
    assert remaining_tokens(step_plan) == 1000


async def test_a_module_error_leaves_the_headers_for_its_answer_and_is_refunded() -> None:
    """The error goes on to the server's side, which renders it (in the module's shape) with
    the headers the step left on the request; the reservation is given back."""
    step_plan = plan({**TOKENS, "requests_per_minute": 5})

    async def failing(request, send) -> None:
        raise UpstreamError("The upstream answered HTTP 500.")

    request = make_request({})
    with pytest.raises(UpstreamError):
        await Limits(step_plan, FixedMeter())(request, Served(request), failing)
    assert dict(request.answer_headers)[b"x-ratelimit-limit-requests"] == b"5"
    assert remaining_tokens(step_plan) == 1000


async def test_too_many_tokens_are_refused_as_tokens() -> None:
    step = Limits(plan(TOKENS), FixedMeter(prompt=10, bound=5000))
    with pytest.raises(RateLimited) as refused:
        await run(step, Answering())
    assert refused.value.error_type == "tokens"


async def test_an_endpoint_without_a_meter_costs_no_tokens() -> None:
    step_plan = plan(TOKENS)
    send, request = await run(Limits(step_plan, None), Answering(), method="GET")
    assert not request.metered
    assert send.headers[b"x-ratelimit-remaining-tokens"] == b"1000"


async def test_the_callers_own_limits_and_the_clients_follow_the_request() -> None:
    per_client = specs_for("route:acme:chat:development:apisix", {"requests_per_minute": 1})
    step = Limits(plan({}, per_client=per_client), None)
    caller = Identity(
        "key:k", limit_specs=credential_specs("acme", "key:k", {"requests_per_minute": 3})
    )

    async def as_caller(address: str) -> Recorder:
        request = make_request({}, client=(address, 1))
        send = Served(request)
        request.identity = caller
        await step(request, send, Answering())
        return send

    first = await as_caller("10.0.0.1")
    assert first.headers[b"x-ratelimit-limit-requests"] == b"1"  # the bucket closest to empty
    with pytest.raises(RateLimited):
        await as_caller("10.0.0.1")
    assert (await as_caller("10.0.0.2")).status == 200  # another client's bucket


async def test_nothing_to_count_calls_the_handler_alone() -> None:
    handler = Answering()
    send, _ = await run(Limits(plan({}), None), handler)
    assert b"x-ratelimit-limit-requests" not in send.headers and handler.seen


async def test_a_callers_limits_apply_on_a_route_without_any() -> None:
    step = Limits(plan({}), None)
    caller = Identity(
        "jwt:bob", limit_specs=credential_specs("acme", "jwt:bob", {"requests_per_hour": 1})
    )

    async def once() -> Recorder:
        request = make_request({})
        send = Served(request)
        request.identity = caller
        await step(request, send, Answering())
        return send

    assert (await once()).headers[b"x-ratelimit-limit-requests"] == b"1"
    with pytest.raises(RateLimited):
        await once()


def test_headers_name_the_bucket_closest_to_empty():
    specs = (
        LimitSpec("a", "requests", 100, 10_000),
        LimitSpec("b", "requests", 10, 100_000),
        LimitSpec("c", "tokens", 1000, 60_000),
    )
    limiter = LocalLimiter()
    decision = limiter.acquire_now(specs, [1, 1, 250])
    headers = dict(ratelimit_headers(specs, decision))
    assert headers[b"x-ratelimit-limit-requests"] == b"10"
    assert headers[b"x-ratelimit-remaining-requests"] == b"9"
    assert headers[b"x-ratelimit-limit-tokens"] == b"1000"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"750"
    assert headers[b"x-ratelimit-reset-tokens"] == b"15s"


def test_durations_read_like_openais():
    assert duration(0) == b"0s"
    assert duration(20_000) == b"20ms"
    assert duration(1_500_000) == b"1.5s"
    assert duration(360 * SECOND) == b"6m0s"
    assert (
        dict(
            retry_after(decide([10 * SECOND], [LimitSpec("k", "requests", 1, SECOND)], [1], 0)[0])
        )[b"retry-after"]
        == b"10"
    )


class _Remote:
    """A limiter that is not the in-process one (as the Redis limiter): its buckets are named
    per request, never planned. It keeps them in a LocalLimiter of its own."""

    def __init__(self) -> None:
        self.local = LocalLimiter()

    async def acquire(self, specs, costs):  # type: ignore[no-untyped-def]
        return self.local.acquire_now(specs, costs)

    async def adjust(self, specs, deltas) -> None:  # type: ignore[no-untyped-def]
        self.local.adjust_now(specs, deltas)


@pytest.mark.parametrize("remote", [False, True])
async def test_planned_and_remote_buckets_answer_alike(remote: bool) -> None:
    """The planned path (in-process limiter) and the per-request one (any other limiter) give
    the same headers, refusals and settlements."""
    limiter = _Remote() if remote else LocalLimiter()
    specs = specs_for("route:acme:chat:development", {**TOKENS, "requests_per_minute": 3})
    step_plan = LimitPlan(limiter, specs)  # type: ignore[arg-type]
    assert (step_plan.planned is None) is remote
    meter = FixedMeter(prompt=10, bound=90)
    usage = Usage(prompt_tokens=10, completion_tokens=20, cached_tokens=0)
    sends = [(await run(Limits(step_plan, meter), Answering(usage=usage)))[0] for _ in range(3)]
    assert [send.headers[b"x-ratelimit-remaining-requests"] for send in sends] == [b"2", b"1", b"0"]
    assert sends[0].headers[b"x-ratelimit-remaining-tokens"] == b"900"
    # the first settled at 30 used, the second reserved 100
    assert sends[1].headers[b"x-ratelimit-remaining-tokens"] in (b"870", b"871")
    with pytest.raises(RateLimited) as refused:
        await run(Limits(step_plan, meter), Answering())
    assert refused.value.error_type == "requests"
    local = limiter.local if isinstance(limiter, _Remote) else limiter
    assert 909 <= local.acquire_now(step_plan.static_token_specs, [0]).remaining[0] <= 911
