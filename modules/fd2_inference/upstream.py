"""The upstream service as this module sees it: base URL, credentials, time limits, reads.

Built once at set-up. Requests go through the gateway's shared pooled aiohttp session; nothing
here creates or closes sessions. Headers and timeouts are built here once, not per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Final, Protocol

import aiohttp

from fd2.module import Timeouts
from fd2.telemetry.scrub import Scrubber, credential_values
from fd2.telemetry.tracing import Tracing
from fd2.telemetry.tracing import current as current_tracing

_JSON: Final = "application/json"
_EVENT_STREAM: Final = "text/event-stream"
# Failures that mean the request never reached the upstream, so another one may be tried.
# ClientConnectorError covers refused connections, DNS and TLS failures; ConnectionTimeoutError
# also covers waiting for a free connection in the pool.
NOT_SENT: Final = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


CallHeaders = Mapping[str, str] | list[tuple[str, str]]
"""A map, or name/value pairs where a header may repeat (a gateway route's `add`)."""


class UpstreamCall:
    """One request as it goes upstream: method, path below the base URL, body and headers."""

    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, body: bytes | None, headers: CallHeaders) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.headers = headers


class Opens(Protocol):
    """What the relays need of an upstream: sending a call, the whole-call time limit, and the
    credentials a call carried (to take them out of an answer that quotes them)."""

    total_s: float

    async def open(self, call: UpstreamCall) -> aiohttp.ClientResponse: ...

    def scrubber(self, call: UpstreamCall) -> Scrubber: ...


class Upstream:
    __slots__ = ("_base", "_fallback", "_headers", "_secrets", "_session", "_timeout", "total_s")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str | None,
        timeouts: Timeouts,
        fallback_url: str | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._session = session
        self._base = base_url
        self._fallback = fallback_url
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
        headers = {**self._headers[stream, body is not None], "x-request-id": request_id}
        return UpstreamCall(method, path, body, headers)

    async def open(self, call: UpstreamCall) -> aiohttp.ClientResponse:
        """Send `call` and return once the status and headers are in; the caller reads the body
        and must release the response (or close it, to drop a half-read connection).

        When the primary cannot be connected to and a fallback is configured, the request goes to
        the fallback instead: a failed connection means the primary never saw the request, so
        sending it elsewhere cannot run it twice.
        """
        try:
            return await self._send(self._base, call)
        except NOT_SENT:
            if self._fallback is None:
                raise
        return await self._send(self._fallback, call)

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


def _with_trace(headers: CallHeaders, trace: Mapping[str, str]) -> CallHeaders:
    """The call's headers, with the trace context replacing any of the same name."""
    if isinstance(headers, list):
        return [pair for pair in headers if pair[0].lower() not in trace] + list(trace.items())
    return {**headers, **trace}


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
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
    response: aiohttp.ClientResponse, error_limit: int, success_limit: int = SUCCESS_BODY_LIMIT
) -> bytes | None:
    """A non-streamed answer's body: up to `success_limit` bytes when it is a success (embeddings
    can be large), `error_limit` otherwise; None past the limit."""
    if 200 <= response.status < 300:
        if response.content_length is not None and response.content_length <= success_limit:
            return await response.read()
        return await read_bounded(response, success_limit)
    return await read_bounded(response, error_limit)
