"""The design's floor: Granian + a raw ASGI app that answers every chat request with one fixed
completion, touching no upstream. What fd2 costs above this is fd2's own work plus its upstream
client. Served by `granian --interface asgi floor_fixed:app` (bench/anchors.py starts it)."""

from __future__ import annotations

from typing import Any

from lifespan import serve_lifespan

_ANSWER = (
    b'{"id":"chatcmpl-floor","object":"chat.completion","created":0,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,'
    b'"total_tokens":11}}'
)
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await serve_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the whole body, as any real server must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _ANSWER})
