"""The upstream service as this module sees it: base URL, credentials, time limits, reads.

Built once at set-up. Requests go through the worker's shared connection pool (fd2.http_client,
`ModuleContext.upstream_pool`; the aiohttp session when a context has no pool); nothing here
creates or closes either. Headers, origins and timeouts are built here once, not per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from functools import lru_cache
from typing import Final, Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from fd2.http_client import (
    ClientError,
    ConnectFailed,
    ConnectionPool,
    Origin,
    Response,
    header_lines,
)
from fd2.module import Timeouts
from fd2.telemetry.scrub import Scrubber, credential_values
from fd2.telemetry.tracing import Tracing
from fd2.telemetry.tracing import current as current_tracing

_JSON: Final = "application/json"
_EVENT_STREAM: Final = "text/event-stream"
# Failures that mean the request never reached the upstream, so another one may be tried.
# ClientConnectorError covers refused connections, DNS and TLS failures; ConnectionTimeoutError
# also covers waiting for a free connection in the pool.
NOT_SENT: Final = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, ConnectFailed)
CLIENT_ERRORS: Final = (aiohttp.ClientError, ClientError)
"""What either upstream client raises when an exchange fails (besides TimeoutError)."""


class PooledResponse:
    """An fd2.http_client answer with the part of aiohttp's ClientResponse the relays read:
    `status`, `raw_headers`, `headers`, `content_type`, `content_length`, `content.iter_any()`,
    `read()` and `close()` (which gives a connection read to its end back to the pool)."""

    __slots__ = ("_headers", "_read_s", "_response", "content", "status")

    def __init__(self, response: Response, read_s: float) -> None:
        self._response = response
        self._read_s = read_s
        self._headers: CIMultiDictProxy[str] | None = None
        self.status = response.status
        self.content = self

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return tuple(self._response.headers)

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """Made when asked for (error answers, providers' failure mapping), not per request."""
        if self._headers is None:
            self._headers = CIMultiDictProxy(
                CIMultiDict(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in self._response.headers
                )
            )
        return self._headers

    @property
    def content_type(self) -> str:
        value = self._response.header(b"content-type")
        if value is None:
            return "application/octet-stream"  # as aiohttp says of an answer without one
        known = _COMMON_TYPES.get(value)
        if known is not None:  # the usual values, spelled as they are meant: nothing to cut
            return known
        return value.decode("latin-1").partition(";")[0].strip().lower()

    @property
    def content_length(self) -> int | None:
        value = self._response.length
        return int(value) if value is not None and value.isdigit() else None

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._response.iter_chunks(self._read_s)

    def relay_source(self) -> tuple[Response, float]:
        """The pooled client's answer and the time limit between its pieces, for a relay that
        has the body pushed to it (`stream_push`)."""
        return self._response, self._read_s

    def read_now(self) -> bytes | None:
        """The whole body if it has arrived already (see `Response.read_now`), else None."""
        return self._response.read_now(SUCCESS_BODY_LIMIT)

    async def read(self) -> bytes:
        return await self._response.read(SUCCESS_BODY_LIMIT, self._read_s)

    def close(self) -> None:
        self._response.release()


_COMMON_TYPES: Final = {
    value.encode(): value.partition(";")[0]
    for value in (
        _JSON,
        _EVENT_STREAM,
        "application/json; charset=utf-8",
        "text/event-stream; charset=utf-8",
    )
}
"""Content-Type values upstreams usually send, with the media type `content_type` reads."""

UpstreamResponse = aiohttp.ClientResponse | PooledResponse


CallHeaders = Mapping[str, str] | list[tuple[str, str]]
"""A map, or name/value pairs where a header may repeat (a gateway route's `add`)."""


class UpstreamCall:
    """One request as it goes upstream: method, path below the base URL, body and headers."""

    __slots__ = ("body", "headers", "lines", "method", "path")

    def __init__(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: CallHeaders,
        lines: bytes | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.headers = headers
        self.lines = lines
        """`headers` as the pooled client sends them, when `Upstream.build` had them ready
        (None: the client renders them)."""


class Opens(Protocol):
    """What the relays need of an upstream: sending a call, the whole-call time limit, and the
    credentials a call carried (to take them out of an answer that quotes them)."""

    total_s: float

    async def open(self, call: UpstreamCall) -> UpstreamResponse: ...

    def scrubber(self, call: UpstreamCall) -> Scrubber: ...


class Upstream:
    __slots__ = (
        "_base",
        "_connect_s",
        "_fallback",
        "_headers",
        "_lines",
        "_origins",
        "_pool",
        "_read_s",
        "_secrets",
        "_session",
        "_timeout",
        "total_s",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str | None,
        timeouts: Timeouts,
        fallback_url: str | None = None,
        secrets: tuple[str, ...] = (),
        pool: ConnectionPool | None = None,
    ) -> None:
        self._session = session
        self._base = base_url
        self._fallback = fallback_url
        self._pool = pool
        # Parsed once; None: a URL the pooled client does not take (then aiohttp sends it).
        self._origins = (_origin(base_url), _origin(fallback_url) if fallback_url else None)
        self._connect_s = timeouts.connect_s
        self._read_s = timeouts.read_s
        # `secrets`: credentials a provider's calls carry or are signed with, scrubbed likewise.
        self._secrets = ((api_key,) if api_key else ()) + secrets
        # Only these headers go upstream, never the client's own: its Authorization authenticated
        # it to the gateway, not to the upstream. Keyed by (stream, has a body).
        common = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers = {
            (stream, has_body): {
                **common,
                "accept": _EVENT_STREAM if stream else _JSON,
                **({"content-type": _JSON} if has_body else {}),
            }
            for stream in (False, True)
            for has_body in (False, True)
        }
        # The same, rendered once for the pooled client: a call adds its request id line.
        self._lines = {key: _lines_or_none(headers) for key, headers in self._headers.items()}
        # aiohttp's own whole-call limit stays off: total_s is enforced around the call, reading
        # of the body included, with asyncio.timeout. `connect` bounds the wait for a pooled
        # connection plus connecting; `sock_connect` connecting alone.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.connect_s,
            sock_connect=timeouts.connect_s,
            sock_read=timeouts.read_s,
        )
        self.total_s = timeouts.total_s

    @property
    def authenticated(self) -> bool:
        return "authorization" in self._headers[False, False]

    def scrubber(self, call: UpstreamCall) -> Scrubber:
        """Takes the module's key, and any credential header `call` carried, out of an answer."""
        return Scrubber((*self._secrets, *credential_values(call.headers)))

    def build(
        self, method: str, path: str, body: bytes | None, *, request_id: str, stream: bool
    ) -> UpstreamCall:
        """A request to `base + path` carrying only the module's own headers."""
        key = (stream, body is not None)
        headers = {**self._headers[key], "x-request-id": request_id}
        lines = self._lines[key]
        if lines is not None and "\r" not in request_id and "\n" not in request_id:
            lines += b"x-request-id: " + request_id.encode("latin-1") + b"\r\n"
        else:
            lines = None
        return UpstreamCall(method, path, body, headers, lines)

    async def open(self, call: UpstreamCall) -> UpstreamResponse:
        """Send `call` and return once the status and headers are in; the caller reads the body
        and must release the response (or close it, to drop a half-read connection).

        When the primary cannot be connected to and a fallback is configured, the request goes to
        the fallback instead: a failed connection means the primary never saw the request, so
        sending it elsewhere cannot run it twice.
        """
        pool, (primary, fallback) = self._pool, self._origins
        if pool is not None and primary is not None:
            try:
                if current_tracing() is None:  # the common case, in this frame
                    headers = call.headers
                    response = await pool.request(
                        primary,
                        _METHODS.get(call.method) or call.method.encode("ascii"),
                        call.path,
                        call.lines or (headers if isinstance(headers, list) else headers.items()),
                        call.body,
                        connect_timeout_s=self._connect_s,
                        read_timeout_s=self._read_s,
                    )
                    return PooledResponse(response, self._read_s)
                return await self._pooled(pool, primary, self._base, call)
            except ConnectFailed:
                if self._fallback is None:
                    raise
            if fallback is not None:
                return await self._pooled(pool, fallback, self._fallback, call)
            return await self._send(self._fallback, call)
        try:
            return await self._send(self._base, call)
        except NOT_SENT:
            if self._fallback is None:
                raise
        return await self._send(self._fallback, call)

    async def _pooled(
        self, pool: ConnectionPool, origin: Origin, base: str, call: UpstreamCall
    ) -> PooledResponse:
        tracing = current_tracing()
        if tracing is not None:
            with tracing.upstream(call.method, base) as trace:
                response = await self._pooled_once(
                    pool, origin, call, _with_trace(call.headers, trace)
                )
                tracing.answered(response.status)
                return response
        return await self._pooled_once(pool, origin, call, call.headers)

    async def _pooled_once(
        self, pool: ConnectionPool, origin: Origin, call: UpstreamCall, headers: CallHeaders
    ) -> PooledResponse:
        pairs = headers if isinstance(headers, list) else headers.items()
        response = await pool.request(
            origin,
            _METHODS.get(call.method) or call.method.encode("ascii"),
            call.path,
            pairs,
            call.body,
            connect_timeout_s=self._connect_s,
            read_timeout_s=self._read_s,
        )
        return PooledResponse(response, self._read_s)

    def _send(self, base: str, call: UpstreamCall) -> Awaitable[aiohttp.ClientResponse]:
        tracing = current_tracing()
        if tracing is not None:
            return self._traced(tracing, base, call)
        return self._session.request(
            call.method,
            base + call.path,
            data=call.body,
            headers=call.headers,
            timeout=self._timeout,
            allow_redirects=False,
        )

    async def _traced(
        self, tracing: Tracing, base: str, call: UpstreamCall
    ) -> aiohttp.ClientResponse:
        """One attempt in a client span of its own, its `traceparent` sent upstream."""
        with tracing.upstream(call.method, base) as trace_headers:
            response = await self._session.request(
                call.method,
                base + call.path,
                data=call.body,
                headers=_with_trace(call.headers, trace_headers),
                timeout=self._timeout,
                allow_redirects=False,
            )
            tracing.answered(response.status)
            return response


_METHODS: Final = {name: name.encode() for name in ("GET", "POST", "PUT", "DELETE", "PATCH")}


@lru_cache(maxsize=4096)  # routes of one upstream share it: parsed once, not per route
def _origin(url: str) -> Origin | None:
    try:
        origin = Origin.of(url)
    except ValueError:
        return None
    # A query in the base URL, or credentials in it, are left to aiohttp's URL handling.
    return (
        origin if "?" not in url and "@" not in url.partition("//")[2].partition("/")[0] else None
    )


def _with_trace(headers: CallHeaders, trace: Mapping[str, str]) -> CallHeaders:
    """The call's headers, with the trace context replacing any of the same name."""
    if isinstance(headers, list):
        return [pair for pair in headers if pair[0].lower() not in trace] + list(trace.items())
    return {**headers, **trace}


async def read_bounded(response: UpstreamResponse, limit: int) -> bytes | None:
    """The whole (decoded) body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# Far above any real answer (2,048 embeddings of 3,072 dimensions are ~130 MB of JSON), but a
# bound: an upstream that never stops sending cannot exhaust the gateway's memory.
SUCCESS_BODY_LIMIT = 256 * 1024 * 1024


async def read_answer(
    response: UpstreamResponse, error_limit: int, success_limit: int = SUCCESS_BODY_LIMIT
) -> bytes | None:
    """A non-streamed answer's body: up to `success_limit` bytes when it is a success (embeddings
    can be large), `error_limit` otherwise; None past the limit."""
    if 200 <= response.status < 300:
        length = response.content_length
        if length is not None and length <= success_limit:
            if success_limit == SUCCESS_BODY_LIMIT and (whole := answer_now(response)):
                return whole
            return await response.read()
        return await read_bounded(response, success_limit)
    return await read_bounded(response, error_limit)


def answer_now(response: UpstreamResponse) -> bytes | None:
    """A success's whole body when it has arrived already, in one piece, with its length
    announced (the common case, read without a coroutine); None otherwise: `read_answer`."""
    if 200 <= response.status < 300 and isinstance(response, PooledResponse):
        length = response.content_length
        if length is not None and length <= SUCCESS_BODY_LIMIT:
            return response.read_now()
    return None


def _lines_or_none(headers: Mapping[str, str]) -> bytes | None:
    """The header lines, or None for headers the client must refuse (a line break in the
    module's key): rendered per call then, and refused there, as before."""
    try:
        return header_lines(headers.items())
    except ValueError:
        return None
