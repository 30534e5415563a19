"""One keep-alive HTTP/1.1 connection to an upstream, as an asyncio protocol parsed by httptools.

A connection carries one request at a time. The request goes out in one write; the answer's
status and headers resolve a future, and the body is handed to the Response as it arrives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final, cast

import httptools

from fd2.http_client.errors import ResponseFailed, UpstreamClosed
from fd2.http_client.response import _HIGH_WATER, Response

_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})
"""Headers that delimit an answer's body: without either, it ends when the connection does."""


class Connection(asyncio.Protocol):
    __slots__ = (
        "_delimited_by_close",
        "_headers_ready",
        "_keep_alive",
        "_on_closed",
        "_on_idle",
        "_parser",
        "_response",
        "_transport",
        "closed",
        "idle_since",
        "loop",
        "reused",
    )

    def __init__(
        self,
        on_idle: Callable[[Connection], None],
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self._on_idle = on_idle
        self._on_closed = on_closed
        """Told once, when the connection closes (the pool's count of open connections)."""
        self._transport: asyncio.Transport | None = None
        # Made inside the loop's create_connection: its loop for good (asking for the running
        # loop per request is a getpid system call on Python 3.11).
        self.loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._response: Response | None = None
        self._headers_ready: asyncio.Future[Response] | None = None
        self._delimited_by_close = False
        self._keep_alive = False
        self.closed = False
        self.reused = False
        """This connection has already carried an answer (it may have gone stale since)."""
        self.idle_since = time.monotonic()

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._response is None:  # bytes nobody asked for: the connection is not usable
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._broken(ResponseFailed(f"malformed HTTP answer: {type(exc).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._mark_closed()
        self._transport = None
        response = self._response
        if response is None:
            return
        if self._headers_ready is not None and not self._headers_ready.done():
            self._headers_ready.set_exception(
                UpstreamClosed("the upstream closed the connection", reused=self.reused)
            )
        elif self._delimited_by_close:
            # An answer without a length ends when the connection does, by a FIN or a reset
            # alike: neither says whether it was complete (the reader judges by what it got).
            response._finish()
        else:
            response._fail(ResponseFailed("the upstream connection broke off mid-answer"))
        self._response = None

    def pause_writing(self) -> None:  # the request is one write; nothing to hold back
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._response is not None
        lower = name.lower()
        response = self._response
        response.headers.append((lower, value))
        if lower in _FRAMING:
            self._delimited_by_close = False
            if lower == b"content-length" and response.length is None:
                response.length = value  # the first, as `header()` would find it

    def on_headers_complete(self) -> None:
        response = self._response
        assert response is not None
        response.status = self._parser.get_status_code()
        if 100 <= response.status < 200:  # an interim answer: the real one follows
            response.headers.clear()
            response.length = None
            self._delimited_by_close = True
            return
        waiter = self._headers_ready
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def on_body(self, body: bytes) -> None:
        response = self._response
        assert response is not None
        sink = response._sink
        if sink is not None:  # pushed (`Response.push_to`): no buffer, no task to wake
            sink.body_piece(body)
            return
        # Buffered, and `Response._wake` spelled out: once per piece of every answer's body.
        response._chunks.append(body)
        response._buffered += len(body)
        if response._buffered > _HIGH_WATER and not response._paused:
            response._paused = True
            self.pause_reading()
        waiter = response._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        response = self._response
        if response is None or 100 <= response.status < 200:
            return
        # Read here: the parser forgets it once the message is over.
        self._keep_alive = self._parser.should_keep_alive()
        response._finish()

    # Used by the pool and the response -------------------------------------------------------

    def send(self, request: bytes) -> asyncio.Future[Response]:
        """Write `request`; the future resolves with the Response once its headers are in."""
        assert self._transport is not None and self._response is None
        self._response = Response(self)
        self._keep_alive = False
        # Until a Content-Length or Transfer-Encoding header says otherwise (`on_header`).
        self._delimited_by_close = True
        self._headers_ready = self.loop.create_future()
        self._transport.write(request)
        return self._headers_ready

    def release(self, response: Response) -> None:
        if response is not self._response:
            return
        if (
            response.complete
            and not self.closed
            and not self._delimited_by_close
            and self._keep_alive
        ):
            self._response = None
            self._headers_ready = None
            self.reused = True
            self.idle_since = time.monotonic()
            self._on_idle(self)
        else:
            self.abort()

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def abort(self) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()
        self._mark_closed()
        self._response = None

    def _mark_closed(self) -> None:
        if not self.closed:
            self.closed = True
            if self._on_closed is not None:
                self._on_closed()

    def _broken(self, error: Exception) -> None:
        waiter = self._headers_ready
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        elif self._response is not None:
            self._response._fail(error)
        self.abort()

    def __repr__(self) -> str:
        return (
            f"<Connection {'closed' if self.closed else 'open'}{' reused' if self.reused else ''}>"
        )
