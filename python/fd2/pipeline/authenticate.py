"""Authenticate: who is calling, by the route's auth policy; 401/403 before anything else runs."""

from __future__ import annotations

from fd2.auth.policy import AuthPolicy
from fd2.module import Handler
from fd2.request import Request
from fd2.types import Send


class Authenticate:
    """Sets `request.identity` from the credential the policy accepts, or raises 401/403."""

    __slots__ = ("policy",)

    def __init__(self, policy: AuthPolicy) -> None:
        self.policy = policy

    async def __call__(self, request: Request, send: Send, call_next: Handler) -> None:
        request.identity = await self.policy.authenticate(request)
        await call_next(request, send)
