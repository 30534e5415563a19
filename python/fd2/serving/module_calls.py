"""In-process calls from one module to another of the same project (`ModuleContext.modules`).

A module's dependencies are handed to it as `ModuleHandle`s: `await handle.call("POST",
"/v1/chat/completions", {...})` runs that module's compiled handler for the same environment (so
whatever the route applies to an HTTP request applies here too) and gives back its answer
(status, headers, then the body whole or chunk by chunk) without HTTP, sockets or serialising
the answer twice. The route is looked up in the route table when the call is made: a call made
after a rebuild reaches the rebuilt module. Errors come back as answers, shaped exactly as an
HTTP client would see them.

The answer streams: `call` returns once the response has started, and the body arrives as the
target module sends it (at most a few chunks ahead of the reader). Read it (`read()`), iterate
it, or close it (`async with`, `aclose()`); closing early tells the target its client went away.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson

from fd2.serving.errors import (
    INTERNAL_ERROR_BODY,
    Fd2Error,
    MethodNotAllowed,
    NotFound,
    UnknownEnvironment,
)
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.request_metrics import UPSTREAM_ERRORS, upstream_failed
from fd2.serving.responses import JSON, send_bytes, send_error
from fd2.types import Message

if TYPE_CHECKING:
    from fd2.control.route_table import Route, RouteTable
    from fd2.module import Handler

_log = logging.getLogger("fd2.module_calls")
_AHEAD: Final = 8
"""Body chunks the target may send before the caller has read them (back-pressure beyond)."""


class _Exchange:
    """The ASGI side the target module sees: the request body once, then its answer collected."""

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body
        self.started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]]
        self.started = asyncio.get_running_loop().create_future()
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue(_AHEAD)
        """Body chunks in order, then None."""
        self.finished = False
        self.closed = asyncio.Event()
        self.request: Request | None = None
        """The request served (set once made): its steps' headers and its status."""

    async def receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.closed.wait()  # as a server does: the next message is the client leaving
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if not self.started.done():
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
                status = int(message["status"])
                if self.request is not None:  # as the server's side: the steps' headers too
                    self.request.status = status
                    headers += self.request.answer_headers
                self.started.set_result((status, headers))
        elif message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            if body:
                await self.chunks.put(body)

    def finish(self) -> None:
        self.finished = True
        if not self.chunks.full():  # else the reader drains it and then sees `finished`
            self.chunks.put_nowait(None)


class ModuleAnswer:
    """What a called module answered: `status`, `headers`, then its body."""

    __slots__ = ("__weakref__", "_exchange", "_task", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        exchange: _Exchange,
        task: asyncio.Task[None] | None,
    ) -> None:
        self.status = status
        self.headers = headers
        self._exchange = exchange
        self._task = task
        if task is not None:
            # An answer dropped unread must not keep the target (and its upstream call) running.
            weakref.finalize(self, task.cancel)

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (name in lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def read(self) -> bytes:
        """The whole body."""
        return b"".join([chunk async for chunk in self])

    async def json(self) -> Any:
        return orjson.loads(await self.read())

    async def __aiter__(self) -> AsyncIterator[bytes]:
        exchange = self._exchange
        while not (exchange.finished and exchange.chunks.empty()):
            chunk = await exchange.chunks.get()
            if chunk is None:
                break
            yield chunk

    async def aclose(self) -> None:
        """Stop reading: the target sees its client disconnect and is cancelled."""
        self._exchange.closed.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> ModuleAnswer:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class ModuleHandle:
    """Another module of the project, callable in process (see the module docstring)."""

    def __init__(
        self,
        table: Callable[[], RouteTable],
        *,
        project: str,
        module: str,
        module_type: str,
        environment: str,
        caller: str,
        sets_scope: bool = False,
    ) -> None:
        self._table = table
        self.project = project
        self.name = module
        self.module_type = module_type
        self.environment = environment
        self._caller = caller
        self._sets_scope = sets_scope
        """Whether `call` may put entries in the ASGI scope: for fd2's own callers (the job
        runner's captured identity), never for the handles modules get."""

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | Mapping[str, Any] | None = None,
        *,
        headers: Iterable[tuple[bytes, bytes]] = (),
        request_id: str | None = None,
        scope: Mapping[str, Any] | None = None,
    ) -> ModuleAnswer:
        """Call the module's endpoint `path` (e.g. `/v1/chat/completions`) with `method`.

        `body` is bytes as they are or a mapping sent as JSON. `headers` are what the target
        (and its route's steps) see: forward the caller's `authorization` where the target
        needs one. `request_id` ties the call to the request being served in the logs. `scope`:
        extra ASGI scope entries for the route's steps (only in-process callers can set any;
        `fd2.jobs` passes the identity a job was submitted with; a module's handle refuses)."""
        if scope and not self._sets_scope:
            raise ValueError("scope entries are for fd2's own callers, not a module's handle")
        payload, content_type = _payload(body)
        request_id = request_id or uuid.uuid4().hex
        try:
            route, handler = self._resolve(method, path)
        except Fd2Error as exc:
            return await _error_answer(exc)
        exchange = _Exchange(payload)
        asgi_scope = self._scope(method, path, payload, content_type, headers, request_id)
        if scope:
            asgi_scope.update(scope)
        request = Request(
            asgi_scope,
            exchange.receive,
            request_id=request_id,
            project=self.project,
            module=self.name,
            environment=route.environment,
            path=path,
            content_length=len(payload),
            max_body=len(payload),
        )
        exchange.request = request
        loaded = route.loaded
        assert loaded is not None  # a route that serves has its instance
        loaded.acquire()
        task = asyncio.get_running_loop().create_task(_serve(handler, request, exchange))
        task.add_done_callback(lambda _: loaded.release())
        try:
            await asyncio.wait((task, exchange.started), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not exchange.started.done():  # cancelled from outside before it answered
            return await _error_answer(None)
        status, answer_headers = exchange.started.result()
        return ModuleAnswer(status, answer_headers, exchange, task)

    def _resolve(self, method: str, path: str) -> tuple[Route, Handler]:
        label = f"{self.project}/{self.name}"
        group = self._table().group(self.project, self.name)
        if group is None:
            raise NotFound(f"Module {label} is not served.")
        route = group.by_environment.get(self.environment)
        if route is None:
            raise UnknownEnvironment(
                f"Environment {self.environment!r} is not configured for {label}; "
                f"valid environments: {group.environment_list}."
            )
        if route.unavailable is not None:
            raise route.unavailable
        methods = route.handlers.get(path)
        if methods is None:
            raise NotFound(f"Unknown endpoint {path} for module {label}.")
        handler = methods.get(method)
        if handler is None:
            raise MethodNotAllowed(
                f"Method {method} is not allowed for {path}.", allowed=tuple(methods)
            )
        return route, handler

    def _scope(
        self,
        method: str,
        path: str,
        payload: bytes,
        content_type: bytes | None,
        headers: Iterable[tuple[bytes, bytes]],
        request_id: str,
    ) -> dict[str, Any]:
        names = [(name.lower(), value) for name, value in headers]
        given = {name for name, _ in names}
        if content_type is not None and b"content-type" not in given:
            names.append((b"content-type", content_type))
        names.append((b"content-length", str(len(payload)).encode()))
        names.append((b"x-request-id", request_id.encode()))
        full_path = f"/{self.project}/{self.name}{path}"
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": full_path,
            "raw_path": full_path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": names,
            "client": None,
            "server": None,
            # Only in-process calls carry it: the `project/module` that made the call.
            "fd2.caller": self._caller,
        }


def _payload(body: bytes | Mapping[str, Any] | None) -> tuple[bytes, bytes | None]:
    if body is None:
        return b"", None
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), None
    return orjson.dumps(body), JSON


async def _error_answer(exc: Fd2Error | None) -> ModuleAnswer:
    """An answer made here (no route, no handler), shaped as fd2 answers HTTP clients."""
    exchange = _Exchange(b"")
    if exc is None:
        await send_bytes(exchange.send, 500, INTERNAL_ERROR_BODY)
    else:
        await send_error(exchange.send, exc)
    exchange.finish()
    status, headers = exchange.started.result()
    return ModuleAnswer(status, headers, exchange, None)


async def _serve(handler: Handler, request: Request, exchange: _Exchange) -> None:
    """Runs the target's handler as `fd2.serving.app` runs it for an HTTP request."""
    try:
        await handler(request, exchange.send)
        if not exchange.started.done() and not request.disconnected:
            _log.error("in-process call %s: the module sent no answer", request.request_id)
            await send_bytes(exchange.send, 500, INTERNAL_ERROR_BODY)
    except Fd2Error as exc:
        if isinstance(exc, UPSTREAM_ERRORS):  # counted as the core counts a served request's
            upstream_failed(request, exc.code or "bad_gateway")
        if not exchange.started.done():
            await send_error(exchange.send, exc)
        else:
            _log.warning(
                "in-process call %s: %s after the response started", request.request_id, exc.code
            )
    except ClientDisconnected:
        pass
    except Exception as exc:
        _log.error("in-process call %s failed: %s", request.request_id, type(exc).__name__)
        if not exchange.started.done():
            await send_bytes(exchange.send, 500, INTERNAL_ERROR_BODY)
    finally:
        exchange.finish()
