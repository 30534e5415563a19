"""The HTTP client behind the attempt loop, as a small interface: send, the status line, the
first chunk, the whole body, close, and what a client's exception means.

`SessionClient` is the gateway's pooled aiohttp session. fd2's lean client
(`fd2.http_client`) fits behind another adapter of the same shape once the relays take its
`Response` too: `Response` below is the relays' response type, switched with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp

from fd2.module import Timeouts
from fd2.serving.errors import Fd2Error
from fd2.telemetry.tracing import current as current_tracing
from fd2_inference.answers import gateway_error
from fd2_inference.deployments.config import Cause
from fd2_inference.exchange import RawHeaders
from fd2_inference.upstream import read_answer

Response = aiohttp.ClientResponse


class Client(Protocol):
    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        """POST and return once the status line and headers are in. A keep-alive connection
        found closed before any answer is retried once on a new one (not the target's fault)."""

    def head(self, response: Response) -> tuple[int, Mapping[str, str], RawHeaders]:
        """Status, headers (case-insensitive names) and the raw header pairs."""

    async def first_chunk(self, response: Response) -> bytes:
        """The body's first bytes as they arrive (b"": it ended empty)."""

    async def whole(self, response: Response, limit: int) -> bytes | None:
        """The whole body; None past `limit` bytes."""

    def close(self, response: Response) -> None: ...

    def failure(self, exc: BaseException, total_s: float) -> tuple[Cause, Fd2Error] | None:
        """What a failed attempt's exception means (None: not the client's: let it propagate)."""


class SessionClient:
    """The gateway's shared pooled aiohttp session (never closed here)."""

    __slots__ = ("_limits", "_session")

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._limits: dict[Timeouts, aiohttp.ClientTimeout] = {}

    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        limits = self._limits.get(timeouts)
        if limits is None:
            # aiohttp's own whole-call limit stays off: the attempt bounds the call itself.
            limits = self._limits[timeouts] = aiohttp.ClientTimeout(
                total=None,
                connect=timeouts.connect_s,
                sock_connect=timeouts.connect_s,
                sock_read=timeouts.read_s,
            )
        try:
            return await self._post(url, body, headers, limits)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if isinstance(exc, aiohttp.ClientConnectorError):
                raise  # never connected: not a stale connection
            return await self._post(url, body, headers, limits)

    async def _post(
        self, url: str, body: bytes, headers: Mapping[str, str], limits: aiohttp.ClientTimeout
    ) -> Response:
        tracing = current_tracing()
        if tracing is None:
            return await self._session.request(
                "POST", url, data=body, headers=headers, timeout=limits, allow_redirects=False
            )
        # Each attempt a client span of its own, its `traceparent` sent upstream.
        with tracing.upstream("POST", url) as trace:  # records host and port only
            response = await self._session.request(
                "POST",
                url,
                data=body,
                headers={**headers, **trace},
                timeout=limits,
                allow_redirects=False,
            )
            tracing.answered(response.status)
            return response

    def head(self, response: Response) -> tuple[int, Mapping[str, str], RawHeaders]:
        return response.status, response.headers, response.raw_headers

    async def first_chunk(self, response: Response) -> bytes:
        return await response.content.readany()

    async def whole(self, response: Response, limit: int) -> bytes | None:
        return await read_answer(response, limit)

    def close(self, response: Response) -> None:
        response.close()

    def failure(self, exc: BaseException, total_s: float) -> tuple[Cause, Fd2Error] | None:
        if not isinstance(exc, TimeoutError | aiohttp.ClientError):
            return None
        error = gateway_error(exc, total_s)
        assert error is not None
        return _cause(exc), error


def _cause(exc: BaseException) -> Cause:
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return "connect"  # never reached the upstream
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "connect"  # closed or reset before any answer (stale retried already)
    return "5xx"
