"""One upstream answer: status and headers once they are in, then the body, read whole or chunk
by chunk as it arrives, with back-pressure (the connection stops reading while the reader lags).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Final

from fd2.deadlines import Deadline
from fd2.http_client.errors import ReadTimeout, ResponseFailed

if TYPE_CHECKING:
    from fd2.http_client.connection import Connection

_HIGH_WATER: Final = 256 * 1024
"""Buffered body bytes at which the connection stops reading from the socket
(`Connection.on_body`)."""
_LOW_WATER: Final = 64 * 1024


class Response:
    __slots__ = (
        "_buffered",
        "_chunks",
        "_connection",
        "_done",
        "_error",
        "_paused",
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
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Read by the caller ------------------------------------------------------------------------

    async def next_chunk(
        self, timeout_s: float | None, deadline: Deadline | None = None
    ) -> bytes | None:
        """The next chunk; None at the end of the body. ReadTimeout when none comes for
        `timeout_s`. `deadline`: one the calling task re-arms for each wait (`reader`) instead
        of a new one per wait."""
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
                        # Coarse (0.1 s) and cheap, per chunk.
                        with Deadline(timeout_s) if deadline is None else deadline.rearm(timeout_s):
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

    def reader(self, timeout_s: float) -> Callable[[], Awaitable[bytes | None]]:
        """`next_chunk(timeout_s)` for the calling task's successive reads (a stream relay's),
        awaited directly (no async generator around each read) and with one deadline for all
        of them. Call it in the task that reads, and read only there."""
        return partial(self.next_chunk, timeout_s, Deadline(timeout_s))

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
