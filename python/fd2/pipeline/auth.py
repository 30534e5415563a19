"""The auth steps: authenticate (who is calling, by the route's auth policy), then authorise
(the caller's endpoint and model permissions), both before any limit is taken.

The model is the one the endpoint's meter says the request will use (after the module's
defaults), never read from the body here: the core does not know where a provider puts it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Final

from fd2.auth.errors import Forbidden
from fd2.auth.identity import Identity
from fd2.auth.policy import AuthPolicy
from fd2.metering import Meter
from fd2.module import Handler
from fd2.serving import request_metrics
from fd2.serving.errors import Unauthorized
from fd2.serving.request import Request
from fd2.types import Send

_log = logging.getLogger("fd2.auth")
_READS: Final = frozenset({"GET", "HEAD"})
JOB_IDENTITY: Final = "fd2.job_identity"
"""The ASGI scope key of the identity a job runs as (set by `fd2.jobs.runner` only)."""


class Authenticate:
    """Sets `request.identity` from the credential the policy accepts, or raises 401/403.

    Given `authorise`, it runs that step itself, and only for an identity it can refuse (one
    limited to some endpoints or models): one step fewer on every other request."""

    __slots__ = ("_authorise", "policy")

    def __init__(self, policy: AuthPolicy, authorise: Authorise | None = None) -> None:
        self.policy = policy
        self._authorise = authorise

    def __call__(self, request: Request, send: Send, call_next: Handler) -> Awaitable[None]:
        # A plain function: a caller known without a wait (a key of the manifest's, a token
        # verified before) goes on to the next step with no coroutine of this step's.
        # A job run in process (fd2.jobs) carries its caller, authenticated when it was
        # submitted. Only in-process calls can put this key in a scope (no header can).
        identity: Identity | None = request.scope.get(JOB_IDENTITY)
        if identity is None:
            try:
                identity = self.policy.authenticate_now(request)
            except (Unauthorized, Forbidden) as exc:
                _refused(request, exc)
                raise
            if identity is None:
                return self._after_waiting(request, send, call_next)
        request.identity = identity
        return self._next(request, send, call_next, identity)

    async def _after_waiting(self, request: Request, send: Send, call_next: Handler) -> None:
        """A caller that needs a wait to know (a token to verify, the shared key store)."""
        try:
            identity = await self.policy.authenticate(request)
        except (Unauthorized, Forbidden) as exc:
            _refused(request, exc)
            raise
        request.identity = identity
        await self._next(request, send, call_next, identity)

    def _next(
        self, request: Request, send: Send, call_next: Handler, identity: Identity | None
    ) -> Awaitable[None]:
        authorise = self._authorise
        if authorise is not None and identity is not None and identity.restricted:
            return authorise(request, send, call_next)
        return call_next(request, send)


class Authorise:
    """403 unless the identity may use this endpoint and the model the request will use.

    An endpoint without a meter cannot say which model it uses: a caller limited to some models
    may then only read from it (GET, HEAD), never send it work."""

    __slots__ = ("_meter",)

    def __init__(self, meter: Meter | None) -> None:
        self._meter = meter

    async def __call__(self, request: Request, send: Send, call_next: Handler) -> None:
        identity = request.identity
        if identity is not None:
            if not identity.allows_endpoint(request.path):
                _log.info("request %s: endpoint not permitted", request.request_id)
                _failed(request, "forbidden")
                raise Forbidden()
            if identity.models is not None and not await self._model_allowed(
                request, identity.models
            ):
                _log.info("request %s: model not permitted", request.request_id)
                _failed(request, "forbidden")
                raise Forbidden()
        await call_next(request, send)

    async def _model_allowed(self, request: Request, models: frozenset[str]) -> bool:
        if self._meter is None:
            return request.method in _READS
        return await self._meter.model(request) in models


def _refused(request: Request, exc: Unauthorized | Forbidden) -> None:
    """An authentication refused, counted by its reason class."""
    if isinstance(exc, Forbidden):
        _failed(request, "forbidden")
    else:
        _failed(request, "missing" if exc.missing else "invalid")


def _failed(request: Request, reason: str) -> None:
    """One auth failure in the metrics, by reason class (never the credential or its key id)."""
    metrics = request_metrics.current()
    if metrics is not None:
        metrics.count(
            metrics.auth_failures, request.project, request.module, request.environment, reason
        )
