"""The request object handed to module handlers: route identity, headers and a bounded body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from fd2.deadlines import Deadline
from fd2.serving.errors import BadRequest, IncompleteBody, PayloadTooLarge, RequestTimeout
from fd2.types import Receive, Scope

if TYPE_CHECKING:
    from fd2.auth.identity import Identity
    from fd2.metering import Cost, Meter, Usage


class ClientDisconnected(Exception):
    """The client went away before its request body was read."""


class Request:
    """One incoming HTTP request, already routed to (project, module, environment)."""

    __slots__ = (
        "_body",
        "_json",
        "_on_gone",
        "_receive",
        "_watch",
        "answer_headers",
        "body_timeout",
        "content_length",
        "cost",
        "disconnected",
        "environment",
        "identity",
        "max_body",
        "metered",
        "method",
        "module",
        "path",
        "project",
        "request_id",
        "scope",
        "status",
        "usage",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        *,
        request_id: str,
        project: str,
        module: str,
        environment: str,
        path: str,
        content_length: int | None,
        max_body: int,
        body_timeout: float = 60.0,
    ) -> None:
        self.scope = scope
        self._receive = receive
        self.request_id = request_id
        self.project = project
        self.module = module
        self.environment = environment
        self.path = path
        self.method: str = scope["method"]
        self.content_length = content_length
        self.max_body = max_body
        self.body_timeout = body_timeout
        self._body: bytes | None = None
        self._json: dict[str, Any] | None = None
        # Set once fd2 has seen the client go away (or its body cut): nothing reaches it then.
        self.disconnected = False
        self._watch: Any = None
        self._on_gone: Callable[[], None] | None = None
        self.identity: Identity | None = None
        """Who is calling, set by the route's authentication step (None: an open route)."""
        self.cost: Cost | None = None
        """The module's estimate of this request, once a step or the module asked for it."""
        self.usage: Usage | None = None
        """What the request used, as the module reported it (`report_usage`)."""
        self.metered = False
        """True when a step reads this request's usage (token limits; later metrics, audit): a
        module reports usage then, and may skip the work when nothing reads it."""
        self.answer_headers: list[tuple[bytes, bytes]] | tuple[()] = ()
        """Headers the route's steps add to the answer (the limits' x-ratelimit-*), whatever
        sends it: the module, a later step, or fd2 rendering an error."""
        self.status = 0
        """The answer's status once it has started (0 before)."""

    async def estimate(self, meter: Meter) -> Cost:
        """The request's cost by `meter` (fd2.metering), made once: later callers (other steps,
        the module itself) get the same estimate, so no prompt is counted twice."""
        cost = self.cost
        if cost is None:
            cost = self.cost = await meter.estimate(self)
        return cost

    def report_usage(self, usage: Usage) -> None:
        """The module's report of what this request used (the metering contract, fd2.metering).

        Report once the answer is known, streams included; a later report replaces an earlier
        one. A module that reports nothing is charged its estimate."""
        self.usage = usage

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (name in lower case), or None."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value  # type: ignore[no-any-return]
        return None

    async def body(self) -> bytes:
        """The whole body, refused with 413 past `max_body` without reading the rest.

        The deadline (`body_timeout`, 408 after) covers the wait for the first piece too, so a
        client that announces a body and never sends it does not hold the request open."""
        if self._body is not None:
            return self._body
        if self.content_length is not None and self.content_length > self.max_body:
            raise PayloadTooLarge(_too_large(self.max_body))
        try:
            with Deadline(self.body_timeout):
                self._body = await self._read_body()
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive in time (limit: {self.body_timeout:g} s)."
            ) from None
        return self._body

    async def _read_body(self) -> bytes:
        message = await self._receive()
        first: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if message["type"] == "http.disconnect":
                self._body_cut()
            if len(first) > self.max_body:
                raise PayloadTooLarge(_too_large(self.max_body))
            return first
        if len(first) == self.content_length:
            # All the announced bytes are here (Granian often sends a last, empty part after
            # them): the body is complete without waiting for that part.
            return first
        chunks = [first] if first else []
        size = len(first)
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._body_cut()
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise PayloadTooLarge(_too_large(self.max_body))
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _body_cut(self) -> NoReturn:
        # Granian reports a body it cannot read (malformed chunked framing, a connection cut
        # mid-body) as a disconnect. A client that is really gone never sees this answer; one
        # that sent a malformed body gets a 400 instead of the server's bare 500.
        raise IncompleteBody(
            "The request body could not be read: malformed chunked encoding, or the connection "
            "ended before the whole body arrived."
        )

    async def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 for invalid UTF-8, malformed JSON or a non-object.

        Decoded once: the route's steps (through its meter) and the module share it, and none
        mutates it."""
        if self._json is not None:
            return self._json
        body = await self.body()
        if not body:
            raise BadRequest("The request body is empty; a JSON object is expected.")
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if _is_invalid_utf8(body):
                raise BadRequest("The request body is not valid UTF-8.") from None
            raise BadRequest(f"The request body is not valid JSON: {exc.msg}.") from None
        if not isinstance(value, dict):
            raise BadRequest(f"The request body must be a JSON object, not {_json_kind(value)}.")
        self._json = value
        return value

    def body_if_read(self) -> bytes | None:
        """The body if it has been read already (None: it has not), never waiting for it."""
        return self._body

    def replace_json(self, value: dict[str, Any], body: bytes) -> None:
        """A step's rewrite of the body (PII redaction): the module and the steps after it see
        `value` and `body` (its encoding) instead of what the client sent."""
        self._json = value
        self._body = body
        self.content_length = len(body)

    async def wait_for_disconnect(self) -> None:
        """Returns once the client has gone away (call only after the body has been read)."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                return

    def on_disconnect(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` (on the loop) once the client has gone away; None stops watching.
        Only after the body has been read: the watch consumes `receive`.

        No task: Granian's `receive()` returns a future-like awaitable that takes done callbacks,
        so the watch is one callback on it (a task per request was ~10% of a request's CPU). A
        server whose `receive` is a coroutine gets it wrapped in a task."""
        self._on_gone = callback
        watch = self._watch
        if callback is None:
            if watch is not None:
                self._watch = None
                watch.remove_done_callback(self._watched)
                watch.cancel()
        elif watch is None:
            self._watch_next()

    def _watch_next(self) -> None:
        waiting: Any = self._receive()
        if not hasattr(waiting, "add_done_callback"):
            waiting = asyncio.ensure_future(waiting)
        self._watch = waiting
        waiting.add_done_callback(self._watched)

    def _watched(self, waiting: Any) -> None:
        if waiting is not self._watch:
            return
        self._watch = None
        if waiting.cancelled() or waiting.exception() is not None:
            return
        callback = self._on_gone
        if waiting.result()["type"] == "http.disconnect":
            self.disconnected = True
            if callback is not None:
                callback()
        elif callback is not None:  # a message that is not the client leaving: watch on
            self._watch_next()


def _too_large(limit: int) -> str:
    return f"The request body is larger than this gateway accepts ({limit} bytes)."


def _is_invalid_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
