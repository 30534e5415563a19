"""floor-relay with fd2's own upstream client (fd2.http_client) in place of aiohttp: what the
client alone saves. Same routes and environment as floor_relay."""

from __future__ import annotations

import os
from typing import Any

from lifespan import serve_lifespan

from fd2.http_client import ConnectionPool, Origin

_ORIGINS = {
    "chat": Origin.of(os.environ.get("FLOOR_CHAT", "http://127.0.0.1:9000")),
    "stream": Origin.of(os.environ.get("FLOOR_STREAM", "http://127.0.0.1:9001")),
}
_HEADERS = (("content-type", "application/json"), ("authorization", "Bearer bench-key"))
_pool = ConnectionPool()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send, _pool.close)
        return
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    _, upstream, rest = scope["path"].split("/", 2)
    body = b"".join(chunks) if scope["method"] == "POST" else None
    answer = await _pool.request(
        _ORIGINS[upstream], scope["method"].encode(), "/" + rest, _HEADERS, body,
        connect_timeout_s=5, read_timeout_s=30,
    )  # fmt: skip
    try:
        relayed = [(b"content-type", answer.header(b"content-type") or b"")]
        await send({"type": "http.response.start", "status": answer.status, "headers": relayed})
        async for chunk in answer.iter_chunks(30):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        answer.release()
