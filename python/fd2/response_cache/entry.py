"""What the cache stores of one answer, and the `send` wrapper that records it.

An entry keeps the status, the content type and the body exactly as it was sent, message by
message: a streamed answer is replayed as the same SSE chunks. Only complete 2xx answers are
kept; an error, an answer cut short, a stream without its end-of-stream event or one larger than
the entry bound is not.
"""

from __future__ import annotations

import msgspec

from fd2.types import Message, Send

_DONE = b"data: [DONE]"
CACHE_HEADER = b"x-fd2-cache"


class Entry(msgspec.Struct, array_like=True, frozen=True, gc=False):
    status: int
    content_type: bytes
    chunks: list[bytes]
    streamed: bool


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(Entry)


def decode(raw: bytes) -> Entry | None:
    try:
        return DECODER.decode(raw)
    except msgspec.DecodeError:  # another release's format, or damage: a miss
        return None


async def replay(entry: Entry, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    """The stored answer, with the `extra` headers (`x-fd2-cache: hit`)."""
    headers = [(b"content-type", entry.content_type), *extra]
    if entry.streamed:
        headers.append((b"cache-control", b"no-cache"))  # as a live stream is sent
    else:
        size = sum(len(chunk) for chunk in entry.chunks)
        headers.append((b"content-length", b"%d" % size))
    await send({"type": "http.response.start", "status": entry.status, "headers": headers})
    last = len(entry.chunks) - 1
    for index, chunk in enumerate(entry.chunks):
        await send({"type": "http.response.body", "body": chunk, "more_body": index < last})
    if last < 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Recorder:
    """The `send` a missed request's handler writes to: relays every message (with
    `x-fd2-cache: miss`) and keeps a copy while the answer stays cacheable."""

    __slots__ = ("_limit", "_send", "chunks", "complete", "content_type", "size", "status")

    def __init__(self, send: Send, limit: int) -> None:
        self._send = send
        self._limit = limit
        self.status = 0
        self.content_type = b""
        self.chunks: list[bytes] | None = []
        self.size = 0
        self.complete = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", ()):
                if name == b"content-type":
                    self.content_type = value
            if not 200 <= self.status < 300:
                self.chunks = None
            message["headers"] = [*message.get("headers", ()), (CACHE_HEADER, b"miss")]
        elif kind == "http.response.body":
            chunks = self.chunks
            if chunks is not None:
                body: bytes = message.get("body", b"")
                self.size += len(body)
                if self.size > self._limit:
                    self.chunks = None
                elif body:
                    chunks.append(bytes(body))
            if not message.get("more_body", False):
                self.complete = True
        await self._send(message)

    def entry(self) -> Entry | None:
        """The answer to store, or None when it must not be stored."""
        chunks = self.chunks
        if chunks is None or not self.complete or not self.status:
            return None
        streamed = self.content_type.startswith(b"text/event-stream")
        if streamed and (not chunks or _DONE not in chunks[-1]):
            return None  # cut short, or ended by an in-stream error: never replayed
        return Entry(self.status, self.content_type, chunks, streamed)
