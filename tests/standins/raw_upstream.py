"""An upstream stand-in speaking HTTP/1.1 over raw sockets, for answers no ASGI server sends.

Run it with ``python tests/standins/raw_upstream.py --port 9101``.

Granian (like any ASGI server) frames every streamed answer with chunked encoding, whose last
chunk tells a finished answer from a cut one. Many upstreams (HTTP/1.0-style servers, proxies)
stream without any framing: the answer ends where the connection does, so a reset or a crashed
process looks like an end. This server answers ``POST .../chat/completions`` with such a stream
(``content-type: text/event-stream``, no length, no chunked encoding, ``connection: close``),
chosen by the request's ``model``:

- ``raw-reset``: 3 content chunks, then the connection is reset (RST);
- ``raw-fin``: 3 content chunks, then a plain close (FIN), as when the process dies;
- ``raw-complete``: a whole answer (``finish_reason`` and ``data: [DONE]``), then a close;
- ``raw-no-done``: a whole answer without ``data: [DONE]``, then a close;
- ``raw-garbage``: an HTML page instead of events, then a close;
- ``raw-flood``: a whole answer of ``_FLOOD`` content chunks of ~1 KiB each (~6 MB), written
  as fast as the connection takes them, then ``data: [DONE]`` and a close: more than a client
  that does not read and the sockets between can hold.

Anything else gets ``raw-complete``. ``GET /health`` answers 200 (readiness).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import time

import orjson

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
)
_HEALTH = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
_GARBAGE = b"<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n"
_CHUNKS = 3
_GAP_S = 0.02
_FLOOD = 6000
_FLOOD_TEXT = "x" * 1000


def _event(model: str, delta: dict[str, str], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _body(model: str) -> tuple[list[bytes], bool]:
    """The pieces to send for `model`, and whether to end with a reset."""
    if model == "raw-garbage":
        return [_GARBAGE], False
    pieces = [_event(model, {"role": "assistant", "content": ""})]
    if model == "raw-flood":
        pieces += [_event(model, {"content": f"{i};{_FLOOD_TEXT}"}) for i in range(1, _FLOOD + 1)]
        return [*pieces, _event(model, {}, "stop"), b"data: [DONE]\n\n"], False
    pieces += [_event(model, {"content": f"{i};"}) for i in range(1, _CHUNKS + 1)]
    if model in ("raw-reset", "raw-fin"):
        return pieces, model == "raw-reset"
    pieces.append(_event(model, {}, "stop"))
    if model != "raw-no-done":
        pieces.append(b"data: [DONE]\n\n")
    return pieces, False


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET /health"):
            writer.write(_HEALTH)
            await writer.drain()
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = orjson.loads(await reader.readexactly(length)) if length else {}
        model = payload.get("model") if isinstance(payload, dict) else None
        pieces, reset = _body(model if isinstance(model, str) else "raw-complete")
        writer.write(_HEAD)
        gap = 0.0 if model == "raw-flood" else _GAP_S
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            if gap:
                await asyncio.sleep(gap)
        if reset:
            sock = writer.get_extra_info("socket")
            # Linger 0: close() sends an RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        with contextlib.suppress(ConnectionError):
            writer.close()


async def _main(host: str, port: int) -> None:
    server = await asyncio.start_server(_serve, host, port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="raw-socket upstream stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9101)
    args = parser.parse_args(argv)
    asyncio.run(_main(args.host, args.port))


if __name__ == "__main__":
    main()
