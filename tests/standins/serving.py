"""Runs a stand-in's ASGI app under Granian (uvloop, HTTP/1.1, quiet logs) on loopback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Message = MutableMapping[str, Any]


async def read_body(receive: Callable[[], Awaitable[Message]]) -> bytes:
    """The whole request body of an ASGI request."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def send_json(
    send: Callable[[Message], Awaitable[None]],
    status: int,
    payload: Any,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A JSON answer (`payload` already bytes is sent as it is)."""
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": data})


def serve(
    target: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    factory: bool = False,
    tls: dict[str, Any] | None = None,
) -> None:
    """`tls`: Granian's ssl_* arguments (certificate, key, client CA), for HTTPS stand-ins."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        target,
        factory=factory,
        address=host,
        port=port,
        # No lifespan protocol: the stand-ins have nothing to set up or tear down.
        interface=Interfaces.ASGINL,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels.warning,
        log_access=False,
        **(tls or {}),
    ).serve()
