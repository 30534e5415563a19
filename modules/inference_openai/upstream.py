"""The upstream service as this module sees it: base URL, credentials, time limits, reads.

Built once at set-up. Requests go through the gateway's shared pooled client; nothing here creates
or closes clients.
"""

from __future__ import annotations

import httpx

from fd2.module import Timeouts

_JSON = "application/json"
_EVENT_STREAM = "text/event-stream"


class Upstream:
    __slots__ = ("_authorization", "_base", "_client", "_timeout", "total_s")

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, api_key: str | None, timeouts: Timeouts
    ) -> None:
        self._client = client
        self._base = base_url
        self._authorization = f"Bearer {api_key}" if api_key else None
        # httpx has no whole-call limit; total_s is enforced around the call with asyncio.timeout.
        self._timeout = httpx.Timeout(
            connect=timeouts.connect_s,
            read=timeouts.read_s,
            write=timeouts.read_s,
            pool=timeouts.connect_s,
        )
        self.total_s = timeouts.total_s

    @property
    def authenticated(self) -> bool:
        return self._authorization is not None

    def build(
        self, method: str, path: str, body: bytes | None, *, request_id: str, stream: bool
    ) -> httpx.Request:
        """A request to `base + path`. Only these headers go upstream: never the client's own
        Authorization (it authenticated the client to the gateway, not to the upstream)."""
        headers = {"accept": _EVENT_STREAM if stream else _JSON, "x-request-id": request_id}
        if body is not None:
            headers["content-type"] = _JSON
        if self._authorization is not None:
            headers["authorization"] = self._authorization
        return self._client.build_request(
            method, self._base + path, content=body, headers=headers, timeout=self._timeout
        )

    async def open(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and return once the status and headers are in; the caller reads the
        body and must close the response."""
        return await self._client.send(request, stream=True)


async def read_bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The whole (decoded) body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_answer(response: httpx.Response, error_limit: int) -> bytes | None:
    """A non-streamed answer's body: whole when it is a success (embeddings can be large), at most
    `error_limit` bytes otherwise (None past that)."""
    if 200 <= response.status_code < 300:
        return await response.aread()
    return await read_bounded(response, error_limit)
