"""Limits: take the route's rate limits before the handler, settle token usage after it.

Token limits reserve the request's estimate (prompt plus completion bound, from the endpoint's
meter) before the upstream call and settle with the usage the module reports once the answer,
stream included, has ended, so concurrent streams cannot overshoot a tokens-per-minute limit. An
answer whose usage is not reported keeps its whole reservation (charged by the estimate, never
refunded to zero); a refused or failed call (no 2xx answer) gives it all back.

Every answer that went through limits carries OpenAI's x-ratelimit-* headers (and a 429 its
Retry-After): decided here, put on `request.answer_headers`, which the server side adds to
whatever answers (the module, a later step, or fd2 rendering an error in the module's shape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Final

from fd2.limits.errors import RateLimited
from fd2.limits.gcra import Decision, now_us
from fd2.limits.plan import LimitPlan
from fd2.limits.specs import LimitSpec
from fd2.metering import Meter
from fd2.module import Handler
from fd2.serving import request_metrics
from fd2.serving.request import Request
from fd2.types import Headers, Send


class Limits:
    """The buckets of one endpoint: the route's, the project's, the caller's and (APISIX) the
    client's; OpenAI's x-ratelimit-* headers on every answer, 429 when a bucket is empty."""

    __slots__ = ("_dynamic", "_meter", "_none", "_plan", "_quick")

    def __init__(self, plan: LimitPlan, meter: Meter | None) -> None:
        self._plan = plan
        self._meter = meter
        self._dynamic = bool(plan.per_client or plan.per_caller)
        self._none = not plan.static_specs and not self._dynamic
        """No bucket but what a caller brings."""
        planned = plan.planned
        self._quick = (
            planned
            if planned is not None and not planned.counts_tokens and not self._dynamic
            else None
        )
        """The route's buckets when they count requests only, in the in-process limiter: a
        caller without limits of its own is admitted with no coroutine of this step's."""

    def __call__(self, request: Request, send: Send, call_next: Handler) -> Awaitable[None]:
        identity = request.identity
        if identity is None or not identity.limit_specs:
            if self._none:
                return call_next(request, send)
            quick = self._quick
            if quick is not None:
                outcome = quick.admit(0, now_us())
                if isinstance(outcome, list):  # admitted (a refusal is explained below)
                    request.answer_headers = outcome
                    _count(request, "allowed")
                    return call_next(request, send)
        return self._limited(request, send, call_next)

    async def _limited(self, request: Request, send: Send, call_next: Handler) -> None:
        plan = self._plan
        identity = request.identity
        specs = plan.static_specs
        planned = plan.planned
        if identity is not None and identity.limit_specs:
            specs = specs + identity.limit_specs
            planned = plan.planned_with(identity)
        if self._dynamic:
            client = request.scope.get("client")
            address = str(client[0]) if client else "unknown"
            caller = identity.credential if identity is not None else None
            specs = specs + plan.dynamic_specs(address, caller)
            planned = None  # buckets named per request: nothing to plan
        if not specs:
            await call_next(request, send)
            return
        tokens = (
            plan.static_token_specs
            if specs is plan.static_specs
            else tuple(spec for spec in specs if spec.kind == "tokens")
        )
        reserved = 0
        if tokens and self._meter is not None:  # an endpoint without a meter costs no tokens
            cost = await request.estimate(self._meter)
            reserved = cost.prompt_tokens + cost.completion_bound
            request.metered = True
        decision: Decision | None = None
        if planned is not None:
            # The in-process limiter with the buckets planned once: one native call decides,
            # stores and renders the headers (a refusal changes nothing and says why).
            outcome = planned.admit(reserved, now_us())
            if isinstance(outcome, list):
                headers = outcome
            else:
                decision = Decision(False, *outcome)
                headers = ratelimit_headers(specs, decision)
        else:
            costs = _costs(specs, reserved)
            acquire_now = plan.acquire_now
            if acquire_now is not None:
                decision = acquire_now(specs, costs)
            else:
                decision = await plan.limiter.acquire(specs, costs)
            headers = ratelimit_headers(specs, decision)
        if decision is not None and not decision.allowed:
            _count(request, "limited")
            raise _refusal(specs, _costs(specs, reserved), decision, headers)
        _count(request, "allowed")
        # Whatever answers from here carries them: the module, a later step, or fd2
        # rendering an error (the module's own error shape included).
        request.answer_headers = headers
        try:
            await call_next(request, send)
        finally:
            if tokens:
                # No answer started (an error, the client gone): status 0, all given back.
                delta = _used(request, request.status, reserved) - reserved
                if delta and planned is not None:
                    planned.settle(delta, now_us())
                elif delta:
                    await plan.limiter.adjust(tokens, [delta] * len(tokens))


def _count(request: Request, outcome: str) -> None:
    metrics = request_metrics.current()
    if metrics is not None:
        metrics.count(
            metrics.limit_decisions, request.project, request.module, request.environment, outcome
        )


def _costs(specs: Sequence[LimitSpec], reserved: int) -> list[int]:
    """What a request costs each bucket: one request, or its reserved tokens."""
    return [reserved if spec.kind == "tokens" else 1 for spec in specs]


def _used(request: Request, status: int, reserved: int) -> int:
    """Tokens to charge: the reported usage, else the estimate for an answer, else nothing."""
    usage = request.usage
    if usage is not None:
        return usage.prompt_tokens + usage.completion_tokens
    if 200 <= status < 300:
        return reserved
    return 0


def _refusal(
    specs: Sequence[LimitSpec], costs: Sequence[int], decision: Decision, headers: Headers
) -> RateLimited:
    full = [
        spec.kind
        for spec, left, cost in zip(specs, decision.remaining, costs, strict=True)
        if left < cost
    ]
    what = "tokens" if "tokens" in full and "requests" not in full else "requests"
    return RateLimited(
        f"Rate limit reached for {what}; retry after the time in Retry-After.",
        kind=what,
        headers=headers + retry_after(decision),
    )


def duration(us: int) -> bytes:
    """A reset time as OpenAI writes it: `20ms`, `1s`, `1.5s`, `6m0s`."""
    if us <= 0:
        return b"0s"
    if us < 1_000_000:
        return b"%dms" % max(1, -(-us // 1000))
    seconds = us / 1_000_000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".").encode() + b"s"
    minutes, rest = divmod(int(-(-us // 1_000_000)), 60)
    return b"%dm%ds" % (minutes, rest)


_LIMIT_REQUESTS: Final = b"x-ratelimit-limit-requests"
_REMAINING_REQUESTS: Final = b"x-ratelimit-remaining-requests"
_RESET_REQUESTS: Final = b"x-ratelimit-reset-requests"
_LIMIT_TOKENS: Final = b"x-ratelimit-limit-tokens"
_REMAINING_TOKENS: Final = b"x-ratelimit-remaining-tokens"
_RESET_TOKENS: Final = b"x-ratelimit-reset-tokens"


def ratelimit_headers(specs: Sequence[LimitSpec], decision: Decision) -> list[tuple[bytes, bytes]]:
    """For requests and for tokens: the bucket closest to empty (the one a client must watch).
    One pass over the buckets: this runs on every limited request."""
    remaining = decision.remaining
    requests = tokens = -1
    for index, spec in enumerate(specs):
        if spec.kind == "requests":
            if requests < 0 or (
                remaining[index] * specs[requests].limit < remaining[requests] * spec.limit
            ):
                requests = index
        elif spec.kind == "tokens" and (
            tokens < 0 or remaining[index] * specs[tokens].limit < remaining[tokens] * spec.limit
        ):
            tokens = index
    headers: list[tuple[bytes, bytes]] = []
    if requests >= 0:
        headers += (
            (_LIMIT_REQUESTS, b"%d" % specs[requests].limit),
            (_REMAINING_REQUESTS, b"%d" % remaining[requests]),
            (_RESET_REQUESTS, duration(decision.reset_us[requests])),
        )
    if tokens >= 0:
        headers += (
            (_LIMIT_TOKENS, b"%d" % specs[tokens].limit),
            (_REMAINING_TOKENS, b"%d" % remaining[tokens]),
            (_RESET_TOKENS, duration(decision.reset_us[tokens])),
        )
    return headers


def retry_after(decision: Decision) -> list[tuple[bytes, bytes]]:
    us = decision.retry_after_us
    return [
        (b"retry-after", b"%d" % max(1, -(-us // 1_000_000))),
        (b"retry-after-ms", b"%d" % max(1, -(-us // 1000))),
    ]
