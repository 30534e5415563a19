"""Small helpers that write whole responses to an ASGI `send`."""

from __future__ import annotations

from collections.abc import Iterable

from fd2.serving.errors import Fd2Error, render_error
from fd2.types import Send

JSON = b"application/json"


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: Fd2Error, body: bytes | None = None) -> None:
    """`exc` as an answer: its status and headers, `body` or OpenAI's error shape."""
    body = render_error(exc) if body is None else body
    headers = exc.extra_headers()
    if exc.added_headers:
        headers = [*headers, *exc.added_headers]
    await send_bytes(send, exc.status, body, headers=headers)
