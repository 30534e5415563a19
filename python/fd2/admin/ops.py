"""`/readyz`, `/metrics` and `/admin/*`: answered before routing, never by a module.

/admin/* needs `Authorization: Bearer <token>`, the token coming from `--admin-token-ref` (a
secret reference); without one configured, /admin/* does not exist (404).
"""

from __future__ import annotations

import hmac
import re

import orjson

from fd2.admin.routes_view import routes_view
from fd2.errors import Fd2Error, MethodNotAllowed, NotFound, ServiceUnavailable
from fd2.metrics import CONTENT_TYPE, metrics_registry, render
from fd2.responses import send_bytes, send_error
from fd2.runtime import Runtime
from fd2.types import Scope, Send

OPS_PATHS = frozenset({"/readyz", "/metrics"})
ADMIN_PREFIX = "/admin/"
_REFRESH = re.compile(r"^/admin/manifests/([A-Za-z0-9_-]{1,64})/refresh$")
_READY = b'{"status":"ready"}'
_NOT_READY = b'{"status":"not ready","reason":"no manifest source is usable"}'


class Unauthorized(Fd2Error):
    status = 401
    error_type = "invalid_request_error"
    code = "invalid_admin_token"

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"www-authenticate", b'Bearer realm="fd2-admin"')]


class OpsEndpoints:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._metrics = metrics_registry(runtime)
        token = runtime.admin_token
        self._expected = b"Bearer " + token.reveal().encode() if token is not None else None

    async def handle(self, scope: Scope, send: Send) -> None:
        try:
            await self._dispatch(scope, send)
        except Fd2Error as exc:
            await send_error(send, exc)

    async def _dispatch(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/readyz":
            ready = self._runtime.ready()
            await send_bytes(send, 200 if ready else 503, _READY if ready else _NOT_READY)
            return
        if path == "/metrics":
            body = render(self._metrics)
            await send_bytes(send, 200, body, CONTENT_TYPE)
            return
        self._authorize(scope)
        if path == "/admin/routes":
            _only(method, "GET")
            body = orjson.dumps(routes_view(self._runtime), option=orjson.OPT_INDENT_2)
            await send_bytes(send, 200, body)
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
            raise Unauthorized("A valid admin bearer token is required.")

    async def _refresh(self, project: str) -> dict[str, object]:
        runtime = self._runtime
        local = runtime.local
        if local is not None and project in local.projects:
            await local.sync()
            return {"project": project, "source": "directory", "digest": _digest(runtime, project)}
        cache = runtime.control_tower
        if cache is None:
            raise NotFound(f"Unknown project {project!r}.")
        changed = await cache.refresh_now(project)
        state = cache.states.get(project)
        if state is not None and state.last_error:
            raise ServiceUnavailable(
                f"Refetching {project!r} failed ({state.last_error}); "
                "the cached version keeps serving."
            )
        return {
            "project": project,
            "source": "control-tower",
            "changed": changed,
            "digest": _digest(runtime, project),
            "version": runtime.builder.version_of(project),
            "route_table_version": runtime.builder.table.version,
        }


def _digest(runtime: Runtime, project: str) -> str | None:
    return runtime.builder.digest(project)


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"Method {method} is not allowed here.", allowed=(allowed,))
