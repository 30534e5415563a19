"""Pooled keep-alive connections per upstream origin, and the request call the modules use.

Connections are reused last-in first-out (the most recently used is the least likely to have been
closed by the upstream's idle timeout) and dropped once idle longer than `keepalive_s`. A request
that meets a connection the upstream closed while it sat idle — nothing of an answer came back on
a reused connection — is sent once more on a new connection: the upstream closed the connection
instead of reading the request.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Final
from urllib.parse import quote, urlsplit

from fd2.deadlines import Deadline
from fd2.http_client.connection import Connection
from fd2.http_client.errors import ConnectFailed, ConnectTimeout, ReadTimeout, UpstreamClosed
from fd2.http_client.response import Response

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_NOT_IN_TARGET: Final = re.compile(r"[^\x21-\x7e]")
"""What a request target may not carry as is: spaces, controls, non-ASCII (percent-encoded)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port of an upstream, parsed once (at module set-up, not per request)."""

    scheme: str
    host: str
    port: int
    base_path: str = ""
    """The base URL's path without its trailing slash: requests' paths are appended to it."""
    host_header: bytes = field(default=b"", compare=False)
    _hash: int = field(default=0, init=False, compare=False, repr=False)
    """Hashed once: an origin keys the idle lists on every request."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.scheme, self.host, self.port, self.base_path)))

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[parts.scheme]:
            shown = f"{shown}:{port}"
        return cls(parts.scheme, host, port, parts.path.rstrip("/"), shown.encode("idna"))


class ConnectionPool:
    """One per worker, shared by every module. Not thread-safe (one event loop).

    `max_connections` (0: no cap) bounds the connections open at once, busy or idle, over all
    origins: past it an idle connection to another origin is closed to make room, or the request
    waits for one to come free (within its connect time limit, then ConnectTimeout)."""

    def __init__(
        self,
        *,
        keepalive_s: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 0,
    ) -> None:
        self._idle: dict[Origin, deque[Connection]] = {}
        self._keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._closed = False
        self._max = max_connections
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def open_connections(self) -> int:
        """Connections open now, busy or idle."""
        return self._open

    async def request(
        self,
        origin: Origin,
        method: bytes,
        target: str,
        headers: Iterable[tuple[str, str]] | bytes,
        body: bytes | None,
        *,
        connect_timeout_s: float,
        read_timeout_s: float | None,
    ) -> Response:
        """Send a request and return once the answer's status and headers are in. The caller
        reads the body and then calls `release()` (or `close()`) on the Response.

        `headers`: name/value pairs, or the header lines already rendered (`header_lines`).

        Raises ConnectFailed (the request was never sent), UpstreamClosed (the connection ended
        before any answer), ResponseFailed (a malformed answer), TimeoutError."""
        head = _request_head(origin, method, target, headers, body)
        payload = head + body if body else head
        for _attempt in range(2):
            connection = self._idle_connection(origin) or await self._new_connection(
                origin, connect_timeout_s
            )
            try:
                waiting = connection.send(payload)
                if read_timeout_s is None:
                    return await waiting
                try:
                    with Deadline(read_timeout_s):  # coarse (0.1 s) and cheap
                        return await waiting
                except TimeoutError:
                    raise ReadTimeout("no answer from the upstream in time") from None
            except UpstreamClosed as closed:
                connection.abort()
                if not closed.reused:
                    raise
                # A stale keep-alive connection: the upstream closed it instead of reading.
            except BaseException:
                connection.abort()
                raise
        raise UpstreamClosed("the upstream closed the connection twice", reused=False)

    def _idle_connection(self, origin: Origin) -> Connection | None:
        """A live idle connection to `origin`, without waiting (the common case): None when
        there is none."""
        idle = self._idle.get(origin)
        if idle:
            now = time.monotonic()
            while idle:
                connection = idle.pop()
                if not connection.closed and now - connection.idle_since < self._keepalive_s:
                    return connection
                connection.abort()
        return None

    async def _new_connection(self, origin: Origin, connect_timeout_s: float) -> Connection:
        """A connection when no idle one was there: a new one, or at the cap one that comes
        free."""
        if not self._max or self._open < self._max:
            return await self._connect(origin, connect_timeout_s)
        return await self._acquire_capped(origin, connect_timeout_s)

    async def _acquire_capped(self, origin: Origin, connect_timeout_s: float) -> Connection:
        """At the cap: make room by closing another origin's idle connection, else wait for a
        connection to close or come back idle (both wake one waiter)."""
        try:
            async with asyncio.timeout(connect_timeout_s):
                while True:
                    idle = self._idle.get(origin)
                    while idle:
                        connection = idle.pop()
                        if not connection.closed:
                            return connection
                    if self._open < self._max or self._close_one_idle():
                        break
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiting.append(waiter)
                    try:
                        await waiter
                    finally:
                        if waiter in self._waiting:
                            self._waiting.remove(waiter)
        except TimeoutError:
            raise ConnectTimeout("no free upstream connection in time") from None
        return await self._connect(origin, connect_timeout_s)

    def _close_one_idle(self) -> bool:
        for idle in self._idle.values():
            while idle:
                connection = idle.popleft()  # the longest idle
                if not connection.closed:
                    connection.abort()
                    return True
        return False

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _connection_closed(self) -> None:
        self._open -= 1
        if self._waiting:
            self._wake_one()

    async def _connect(self, origin: Origin, timeout_s: float) -> Connection:
        if self._closed:
            raise ConnectFailed("the connection pool is closed")
        loop = asyncio.get_running_loop()
        tls = None
        if origin.scheme == "https":
            if self._ssl is None:  # one context for every connection (loading CAs is slow)
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        self._open += 1  # counted from the attempt on: the cap bounds connects under way too
        try:
            async with asyncio.timeout(timeout_s):
                _, connection = await loop.create_connection(
                    lambda: Connection(self._put_back_for(origin), self._connection_closed),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except TimeoutError:
            self._connection_closed()
            raise ConnectTimeout("cannot connect: TimeoutError") from None
        except (OSError, ssl.SSLError) as exc:
            self._connection_closed()
            raise ConnectFailed(f"cannot connect: {type(exc).__name__}") from None
        except BaseException:
            self._connection_closed()
            raise
        return connection

    def _put_back_for(self, origin: Origin) -> Callable[[Connection], None]:
        # A C-level partial: no Python frame of its own per request.
        return partial(self._put_back, origin)

    def _put_back(self, origin: Origin, connection: Connection) -> None:
        if self._closed:
            connection.abort()
            return
        self._idle.setdefault(origin, deque()).append(connection)
        if self._waiting:
            self._wake_one()

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost


def header_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    """`name: value` lines as they go upstream, each ended by CRLF; ValueError when a name or
    value holds a line break (a header smuggled into the request)."""
    fields = [f"{name}: {value}\r\n" for name, value in headers]
    text = "".join(fields)
    # Exactly one CR and one LF per field, its own end: none smuggled in a name or value.
    if text.count("\n") != len(fields) or text.count("\r") != len(fields):
        raise ValueError("a header contains a line break")
    return text.encode("latin-1")


def _request_head(
    origin: Origin,
    method: bytes,
    target: str,
    headers: Iterable[tuple[str, str]] | bytes,
    body: bytes | None,
) -> bytes:
    path = origin.base_path + target
    if _NOT_IN_TARGET.search(path) is not None:  # as a browser would send it, never raw
        path = quote(path, safe="!#$%&'()*+,/:;=?@[]~")
    lines = headers if isinstance(headers, bytes) else header_lines(headers)
    length = b"content-length: %d\r\n" % len(body) if body is not None else b""
    return b"".join(
        (
            method,
            b" ",
            path.encode("ascii"),
            b" HTTP/1.1\r\nhost: ",
            origin.host_header,
            b"\r\n",
            lines,
            length,
            b"\r\n",
        )
    )
