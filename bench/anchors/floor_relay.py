"""A bare relay: Granian + a raw ASGI app + one pooled aiohttp session that sends the request's
bytes to the upstream and relays the answer's bytes (streams chunk by chunk), nothing else: no
routing, no auth, no checks. The floor for a Python gateway built on this stack.

Two upstreams, as the harness has: `/chat/<path>` goes to FLOOR_CHAT and `/stream/<path>` to
FLOOR_STREAM (base URLs such as http://127.0.0.1:9000), with the first segment taken off."""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from lifespan import serve_lifespan

_UPSTREAMS = {
    "chat": os.environ.get("FLOOR_CHAT", "http://127.0.0.1:9000"),
    "stream": os.environ.get("FLOOR_STREAM", "http://127.0.0.1:9001"),
}
_session: aiohttp.ClientSession | None = None


def _pool() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        _session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    return _session


async def _close() -> None:
    if _session is not None:
        await _session.close()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send, _close)
        return
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    headers = {"content-type": "application/json", "authorization": "Bearer bench-key"}
    _, upstream, rest = scope["path"].split("/", 2)
    url = f"{_UPSTREAMS[upstream]}/{rest}"
    async with _pool().request(
        scope["method"], url, data=b"".join(chunks), headers=headers
    ) as answer:
        relayed = [(b"content-type", answer.headers.get("content-type", "").encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": relayed})
        async for chunk in answer.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
