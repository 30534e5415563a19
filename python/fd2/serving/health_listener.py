"""`--health-port`: `/healthz` on a listener of its own, outside Granian's connection cap.

A flood of connections on the serving port can fill Granian's per-worker cap (they are timed out,
but a new connection waits for a free slot meanwhile). A liveness probe that waits there would
have the process restarted for being attacked. Each worker listens on the health port too
(SO_REUSEPORT shares it) and answers `GET /healthz` with 200 at once for as long as its event
loop runs, through a drain (Granian starts the app's shutdown only once requests have finished,
so a worker cannot tell it drains before then); readiness is the serving port itself, which is
closed the moment draining starts. One request per connection, heads of at most 4 KiB, read
within two seconds.
"""

from __future__ import annotations

import asyncio

from fd2.serving.errors import ConfigError, error_body

_HEAD_LIMIT = 4096
_READ_TIMEOUT_S = 2.0
_OK = b'{"status":"ok"}'
_NOT_FOUND = error_body(
    "Only /healthz is served on this port.", "invalid_request_error", "not_found"
)


async def start_health_listener(host: str, port: int) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith((b"GET /healthz ", b"GET /healthz?", b"HEAD /healthz ")):
                status, body = 200, _OK
            else:
                status, body = 404, _NOT_FOUND
            reason = b"OK" if status == 200 else b"Not Found"
            writer.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s"
                % (status, reason, len(body), b"" if head.startswith(b"HEAD") else body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    try:
        return await asyncio.start_server(
            answer, host, port, reuse_port=True, limit=_HEAD_LIMIT, backlog=128
        )
    except OSError as exc:
        raise ConfigError(f"--health-port {port}: cannot listen ({exc.strerror})") from None
