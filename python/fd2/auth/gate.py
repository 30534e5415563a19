"""The one hook at dispatch: authenticate, authorise, take the rate limits, then run the handler.

Token limits reserve the prompt estimate plus the completion bound before the upstream call and
settle with the real usage once the answer (stream included) has ended, so concurrent streams
cannot overshoot a tokens-per-minute limit.
"""

from __future__ import annotations

import logging
from typing import Any

from fd2.auth.errors import Forbidden, RateLimited
from fd2.auth.identity import Identity
from fd2.auth.policy import AuthPolicy
from fd2.errors import Fd2Error
from fd2.limits.headers import ratelimit_headers, retry_after
from fd2.limits.plan import LimitPlan
from fd2.limits.prompt_tokens import count_prompt_tokens
from fd2.limits.specs import LimitSpec
from fd2.limits.usage import UsageMeter
from fd2.module import Handler
from fd2.request import Request
from fd2.responses import send_error
from fd2.types import Send

_log = logging.getLogger("fd2.auth")
_EMPTY: dict[str, Any] = {}


class Gate:
    """A route's auth policy and limits; `run` wraps the route's handler for one request."""

    __slots__ = ("_completion_bound", "_default_model", "limits", "policy")

    def __init__(
        self,
        *,
        policy: AuthPolicy,
        limits: LimitPlan,
        default_model: str | None,
        completion_bound: int,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self._default_model = default_model
        self._completion_bound = completion_bound

    async def run(self, request: Request, send: Send, handler: Handler) -> None:
        identity = await self.policy.authenticate(request)
        payload = _EMPTY
        plan = self.limits
        specs: tuple[LimitSpec, ...] = plan.static_specs
        if identity is not None:
            specs = specs + identity.limit_specs if identity.limit_specs else specs
            payload = await self._authorise(request, identity)
        if plan.per_client or plan.per_caller:
            client = request.scope.get("client")
            address = str(client[0]) if client else "unknown"
            caller = identity.credential if identity is not None else None
            specs = specs + plan.dynamic_specs(address, caller)
        if not specs:
            await handler(request, send)
            return
        limiter = plan.limiter
        tokens = (
            plan.static_token_specs
            if specs is plan.static_specs
            else tuple(spec for spec in specs if spec.kind == "tokens")
        )
        reserved = prompt = 0
        if tokens and request.method == "POST":  # a GET (the model list) costs no tokens
            if payload is _EMPTY:
                payload = await request.json_object()
            prompt = await count_prompt_tokens(payload)
            reserved = prompt + self._completion_reserve(request.path, payload)
        costs = [reserved if spec.kind == "tokens" else 1 for spec in specs]
        decision = await limiter.acquire(specs, costs)
        headers = ratelimit_headers(specs, decision)
        if not decision.allowed:
            full = [
                spec.kind
                for spec, left, cost in zip(specs, decision.remaining, costs, strict=True)
                if left < cost
            ]
            what = "tokens" if "tokens" in full and "requests" not in full else "requests"
            raise RateLimited(
                f"Rate limit reached for {what}; retry after the time in Retry-After.",
                kind=what,
                headers=headers + retry_after(decision),
            )
        meter = UsageMeter(send, headers, measure=bool(tokens))
        try:
            await handler(request, meter)
        except Fd2Error as exc:
            if meter.started:
                raise
            # Rendered here rather than by the core, so the error carries the headers too.
            await send_error(meter, exc)
        finally:
            if tokens:
                delta = meter.tokens(prompt) - reserved
                if delta:
                    await limiter.adjust(tokens, [delta] * len(tokens))

    async def _authorise(self, request: Request, identity: Identity) -> dict[str, Any]:
        if not identity.allows_endpoint(request.path):
            _log.info("request %s: endpoint not permitted", request.request_id)
            raise Forbidden()
        if identity.models is None or request.method != "POST":
            return _EMPTY
        payload = await request.json_object()
        model = payload.get("model") or self._default_model
        if model not in identity.models:
            _log.info("request %s: model not permitted", request.request_id)
            raise Forbidden()
        return payload

    def _completion_reserve(self, path: str, payload: dict[str, Any]) -> int:
        if path.endswith("/embeddings"):
            return 0
        bound = payload.get("max_completion_tokens", payload.get("max_tokens"))
        if isinstance(bound, int) and not isinstance(bound, bool) and bound >= 0:
            return bound
        return self._completion_bound
