"""Pooled keep-alive connections per upstream origin, and the request call the modules use.

Connections are reused last-in first-out (the most recently used is the least likely to have been
closed by the upstream's idle timeout) and dropped once idle longer than `keepalive_s`. A request
that meets a connection the upstream closed while it sat idle — nothing of an answer came back on
a reused connection — is sent once more on a new connection: the upstream closed the connection
instead of reading the request.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from fd2.http_client.connection import Connection
from fd2.http_client.errors import ConnectFailed, UpstreamClosed
from fd2.http_client.response import Response

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port of an upstream, parsed once (at module set-up, not per request)."""

    scheme: str
    host: str
    port: int
    base_path: str = ""
    """The base URL's path without its trailing slash: requests' paths are appended to it."""
    host_header: bytes = field(default=b"", compare=False)

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
    """One per worker, shared by every module. Not thread-safe (one event loop)."""

    def __init__(
        self,
        *,
        keepalive_s: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._idle: dict[Origin, deque[Connection]] = {}
        self._keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._closed = False

    async def request(
        self,
        origin: Origin,
        method: bytes,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
        *,
        connect_timeout_s: float,
        read_timeout_s: float | None,
    ) -> Response:
        """Send a request and return once the answer's status and headers are in. The caller
        reads the body and then calls `release()` (or `close()`) on the Response.

        Raises ConnectFailed (the request was never sent), UpstreamClosed (the connection ended
        before any answer), ResponseFailed (a malformed answer), TimeoutError."""
        head = _request_head(origin, method, target, headers, body)
        payload = head + body if body else head
        for _attempt in range(2):
            connection = await self._acquire(origin, connect_timeout_s)
            try:
                waiting = connection.send(payload)
                if read_timeout_s is None:
                    return await waiting
                async with asyncio.timeout(read_timeout_s):
                    return await waiting
            except UpstreamClosed as closed:
                connection.abort()
                if not closed.reused:
                    raise
                # A stale keep-alive connection: the upstream closed it instead of reading.
            except BaseException:
                connection.abort()
                raise
        raise UpstreamClosed("the upstream closed the connection twice", reused=False)

    async def _acquire(self, origin: Origin, connect_timeout_s: float) -> Connection:
        idle = self._idle.get(origin)
        if idle:
            now = time.monotonic()
            while idle:
                connection = idle.pop()
                if not connection.closed and now - connection.idle_since < self._keepalive_s:
                    return connection
                connection.abort()
        return await self._connect(origin, connect_timeout_s)

    async def _connect(self, origin: Origin, timeout_s: float) -> Connection:
        if self._closed:
            raise ConnectFailed("the connection pool is closed")
        loop = asyncio.get_running_loop()
        tls = None
        if origin.scheme == "https":
            tls = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(timeout_s):
                _, connection = await loop.create_connection(
                    lambda: Connection(self._put_back_for(origin)),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectFailed(f"cannot connect: {type(exc).__name__}") from None
        return connection

    def _put_back_for(self, origin: Origin) -> _PutBack:
        return _PutBack(self, origin)

    def _put_back(self, origin: Origin, connection: Connection) -> None:
        if self._closed:
            connection.abort()
            return
        self._idle.setdefault(origin, deque()).append(connection)

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost


class _PutBack:
    """Hands a connection back to its origin's idle list (a callable, bound once per connection)."""

    __slots__ = ("_origin", "_pool")

    def __init__(self, pool: ConnectionPool, origin: Origin) -> None:
        self._pool = pool
        self._origin = origin

    def __call__(self, connection: Connection) -> None:
        self._pool._put_back(self._origin, connection)


def _request_head(
    origin: Origin,
    method: bytes,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
) -> bytes:
    lines = [
        method,
        b" ",
        (origin.base_path + target).encode("ascii"),
        b" HTTP/1.1\r\nhost: ",
        origin.host_header,
        b"\r\n",
    ]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError("a header contains a line break")
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    if body is not None:
        lines.append(b"content-length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    return b"".join(lines)
