"""Limits: take the route's rate limits before the handler, settle token usage after it.

Token limits reserve the request's estimate (prompt plus completion bound, from the endpoint's
meter) before the upstream call and settle with the usage the module reports once the answer,
stream included, has ended, so concurrent streams cannot overshoot a tokens-per-minute limit. An
answer whose usage is not reported keeps its whole reservation (charged by the estimate, never
refunded to zero); a refused or failed call (no 2xx answer) gives it all back.

Every answer that went through limits carries OpenAI's x-ratelimit-* headers (and a 429 its
Retry-After), written here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Final

from fd2.limits.errors import RateLimited
from fd2.limits.gcra import Decision
from fd2.limits.plan import LimitPlan
from fd2.limits.specs import LimitSpec
from fd2.metering import Meter
from fd2.module import Handler
from fd2.serving import request_metrics
from fd2.serving.errors import Fd2Error
from fd2.serving.request import Request
from fd2.serving.request_metrics import UPSTREAM_ERRORS
from fd2.serving.responses import send_error
from fd2.types import Headers, Message, Send


class Limits:
    """The buckets of one endpoint: the route's, the project's, the caller's and (APISIX) the
    client's; OpenAI's x-ratelimit-* headers on every answer, 429 when a bucket is empty."""

    __slots__ = ("_dynamic", "_meter", "_plan")

    def __init__(self, plan: LimitPlan, meter: Meter | None) -> None:
        self._plan = plan
        self._meter = meter
        self._dynamic = bool(plan.per_client or plan.per_caller)

    async def __call__(self, request: Request, send: Send, call_next: Handler) -> None:
        plan = self._plan
        identity = request.identity
        specs = plan.static_specs
        if identity is not None and identity.limit_specs:
            specs = specs + identity.limit_specs
        if self._dynamic:
            client = request.scope.get("client")
            address = str(client[0]) if client else "unknown"
            caller = identity.credential if identity is not None else None
            specs = specs + plan.dynamic_specs(address, caller)
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
        costs = [1] * len(specs)
        if tokens:
            for index, spec in enumerate(specs):
                if spec.kind == "tokens":
                    costs[index] = reserved
        decision = await plan.limiter.acquire(specs, costs)
        headers = ratelimit_headers(specs, decision)
        metrics = request_metrics.current()
        if metrics is not None:
            metrics.count(
                metrics.limit_decisions,
                request.project,
                request.module,
                request.environment,
                "allowed" if decision.allowed else "limited",
            )
        if not decision.allowed:
            raise _refusal(specs, costs, decision, headers)
        answer = _Answer(send, headers)
        try:
            await call_next(request, answer)
        except Fd2Error as exc:
            if answer.status:
                raise
            if isinstance(exc, UPSTREAM_ERRORS):  # counted here: the core never sees it
                request_metrics.upstream_failed(request, exc.code or "bad_gateway")
            # Rendered here rather than by the core, so the error carries the headers too.
            await send_error(answer, exc)
        finally:
            if tokens:
                delta = _used(request, answer.status, reserved) - reserved
                if delta:
                    await plan.limiter.adjust(tokens, [delta] * len(tokens))


class _Answer:
    """The `send` the handler gets: adds the rate-limit headers, remembers the status."""

    __slots__ = ("_headers", "_send", "status")

    def __init__(self, send: Send, headers: Headers) -> None:
        self._send = send
        self._headers = headers
        self.status = 0

    def __call__(self, message: Message) -> Awaitable[None]:
        # The server's awaitable handed back as is: no coroutine frame per message.
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), *self._headers]
        return self._send(message)


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
