"""One upstream answer: status and headers once they are in, then the body, read whole or chunk
by chunk as it arrives, with back-pressure (the connection stops reading while the reader lags),
or pushed piece by piece to a `BodySink` from the connection's own callbacks (`push_to`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final, Protocol

from fd2.deadlines import Deadline
from fd2.http_client.errors import ReadTimeout, ResponseFailed

if TYPE_CHECKING:
    from fd2.http_client.connection import Connection

_HIGH_WATER: Final = 256 * 1024
"""Buffered body bytes at which the connection stops reading from the socket
(`Connection.on_body`)."""
_LOW_WATER: Final = 64 * 1024


class BodySink(Protocol):
    """Takes an answer's body as the connection receives it (`Response.push_to`). Both methods
    are called from the connection's protocol callbacks: they must not raise, nor block."""

    def body_piece(self, piece: bytes) -> None:
        """The next piece of the body, in order."""

    def body_end(self, error: BaseException | None) -> None:
        """The body is over: complete (None) or failed (`error`). Called once, last."""


class Response:
    __slots__ = (
        "_buffered",
        "_chunks",
        "_connection",
        "_done",
        "_error",
        "_paused",
        "_sink",
        "_waiter",
        "headers",
        "length",
        "status",
    )

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        """As received: names lower-cased, values raw."""
        self.length: bytes | None = None
        """The Content-Length header's value as received (None: none came)."""
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._sink: BodySink | None = None
        """Set by `push_to`: the body goes there, not to `_chunks`."""

    def header(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def complete(self) -> bool:
        """The whole body has arrived."""
        return self._done

    # Fed by the connection (a piece of the body by `Connection.on_body` itself) ---------------

    def _finish(self) -> None:
        self._done = True
        sink = self._sink
        if sink is not None:
            self._sink = None
            sink.body_end(None)
            return
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            sink = self._sink
            if sink is not None:
                self._sink = None
                sink.body_end(error)
                return
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Read by the caller ------------------------------------------------------------------------

    async def next_chunk(self, timeout_s: float | None) -> bytes | None:
        """The next chunk; None at the end of the body. ReadTimeout when none comes for
        `timeout_s`."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return None
            # The connection's loop: no getpid (loop_workers).
            self._waiter = waiter = self._connection.loop.create_future()
            try:
                if timeout_s is None:
                    await waiter
                else:
                    try:
                        with Deadline(timeout_s):  # coarse (0.1 s) and cheap, per chunk
                            await waiter
                    except TimeoutError:
                        raise ReadTimeout("the upstream sent nothing in time") from None
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _LOW_WATER:
            self._paused = False
            self._connection.resume_reading()
        return chunk

    def push_to(self, sink: BodySink) -> None:
        """From now on the body goes to `sink` as the connection receives it, from its protocol
        callbacks: no task is woken per piece (what a stream relay's first token and every
        later chunk paid for, `next_chunk`). What has arrived already goes first, from here;
        then, once, `body_end`. The sink holds the upstream back with `pause` and `resume`,
        and leaves with `detach`. Not with `next_chunk` or `read` on the same answer."""
        if self._paused:  # paused for the buffered pieces, all handed over below
            self._paused = False
            self._connection.resume_reading()  # nothing arrives before this method returns
        while self._chunks:
            piece = self._chunks.popleft()
            self._buffered -= len(piece)
            sink.body_piece(piece)  # which may `pause` again
        if self._error is not None:
            sink.body_end(self._error)
        elif self._done:
            sink.body_end(None)
        else:
            self._sink = sink

    def detach(self) -> None:
        """The sink takes nothing more (it failed, or its reader was cancelled)."""
        self._sink = None

    def pause(self) -> None:
        """A sink's back-pressure: the connection stops reading from the socket."""
        if not self._paused:
            self._paused = True
            self._connection.pause_reading()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._connection.resume_reading()

    def read_now(self, limit: int) -> bytes | None:
        """The whole body when it is here already in one piece (the common case: no coroutine
        needed), else None. ResponseFailed when it is longer than `limit`."""
        if self._done and len(self._chunks) == 1:
            whole = self._chunks.popleft()
            self._buffered = 0
            if len(whole) > limit:
                raise ResponseFailed(f"answer longer than {limit} bytes")
            return whole
        return None

    async def read(self, limit: int, timeout_s: float | None = None) -> bytes:
        """The whole body. ResponseFailed when it is longer than `limit`; ReadTimeout when no
        byte arrives for `timeout_s`."""
        whole = self.read_now(limit)
        if whole is not None:
            return whole
        parts: list[bytes] = []
        size = 0
        while (chunk := await self.next_chunk(timeout_s)) is not None:
            size += len(chunk)
            if size > limit:
                raise ResponseFailed(f"answer longer than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def iter_chunks(self, timeout_s: float | None = None) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive; ReadTimeout when none comes for `timeout_s`."""
        while (chunk := await self.next_chunk(timeout_s)) is not None:
            yield chunk

    def release(self) -> None:
        """Done with this answer: its connection goes back to the pool when the body was read to
        its end and the upstream keeps it alive; otherwise it is closed."""
        self._connection.release(self)

    def close(self) -> None:
        """Drop the connection (e.g. a client that left mid-stream): never reused."""
        self._connection.abort()
