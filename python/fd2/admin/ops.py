"""`/readyz`, `/metrics` and `/admin/*`: answered before routing, never by a module.

/admin/* needs `Authorization: Bearer <token>`, the token coming from `--admin-token-ref` (a
secret reference); without one configured, /admin/* does not exist (404). Every manifest source
answers through the same protocol (`fd2.control.sources.protocol`): nothing here asks which is
configured.
"""

from __future__ import annotations

import hmac
import re

import orjson

from fd2.admin import cache_admin, prompts_admin
from fd2.admin.routes_view import routes_view
from fd2.control.runtime import Runtime
from fd2.serving.errors import Fd2Error, MethodNotAllowed, NotFound, Unauthorized
from fd2.serving.responses import send_bytes, send_error
from fd2.telemetry.metrics import CONTENT_TYPE
from fd2.types import Receive, Scope, Send

OPS_PATHS = frozenset({"/readyz", "/metrics"})
ADMIN_PREFIX = "/admin/"
CACHE_PREFIX = "/v1/cache/"
"""The OpenAI-style path of the cache deletion (docs/cache.md), answered here with the admin
token, never routed to a project."""
_REFRESH = re.compile(r"^/admin/manifests/([A-Za-z0-9_-]{1,64})/refresh$")
_READY = b'{"status":"ready"}'
_NOT_READY = b'{"status":"not ready","reason":"no manifest source is usable"}'
_ADMIN_REALM = "fd2-admin"


class OpsEndpoints:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        token = runtime.admin_token
        self._expected = b"Bearer " + token.reveal().encode() if token is not None else None

    async def handle(self, scope: Scope, send: Send, receive: Receive | None = None) -> None:
        try:
            await self._dispatch(scope, send, receive)
        except Fd2Error as exc:
            await send_error(send, exc)

    async def _dispatch(self, scope: Scope, send: Send, receive: Receive | None) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/readyz":
            await self._readiness(send)
            return
        if path == "/metrics":
            await send_bytes(send, 200, self._runtime.metrics.render(), CONTENT_TYPE)
            return
        self._authorize(scope)
        if path == "/admin/routes":
            _only(method, "GET")
            body = orjson.dumps(routes_view(self._runtime), option=orjson.OPT_INDENT_2)
            await send_bytes(send, 200, body)
            return
        if path.startswith(cache_admin.PATHS):
            _only(method, "DELETE")
            answer = await cache_admin.delete(self._runtime.redis, path)
            await send_bytes(send, 200, orjson.dumps(answer))
            return
        if path.startswith(prompts_admin.PREFIX):
            status, answer = await prompts_admin.handle(self._runtime.redis, method, path, receive)
            await send_bytes(send, status, orjson.dumps(answer))
            return
        match = _REFRESH.match(path)
        if match is None:
            raise NotFound(f"Unknown admin endpoint {path}.")
        _only(method, "POST")
        await send_bytes(send, 200, orjson.dumps(await self._refresh(match.group(1))))

    def _authorize(self, scope: Scope) -> None:
        if self._expected is None:
            raise NotFound("The admin API is not enabled on this gateway (no --admin-token-ref).")
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
        if not hmac.compare_digest(given, self._expected):
            raise Unauthorized(
                "A valid admin bearer token is required.",
                missing=not given,
                code="invalid_admin_token",
                realm=_ADMIN_REALM,
            )

    async def _readiness(self, send: Send) -> None:
        """Whether a manifest source is usable; unhealthy modules are counted, not fatal (see
        `fd2.control.module_health`). Read from state kept in the background: this waits on
        nothing."""
        if not self._runtime.ready():
            await send_bytes(send, 503, _NOT_READY)
            return
        unhealthy = len(self._runtime.health.unhealthy())
        body = orjson.dumps({"status": "ready", "unhealthy_modules": unhealthy})
        await send_bytes(send, 200, body if unhealthy else _READY)

    async def _refresh(self, project: str) -> dict[str, object]:
        """The admin push, answered by the first source that has (or can look up) the project."""
        for source in self._runtime.sources:
            answer = await source.refresh(project)
            if answer is not None:
                return dict(answer)
        raise NotFound(f"Unknown project {project!r}.")


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"Method {method} is not allowed here.", allowed=(allowed,))
