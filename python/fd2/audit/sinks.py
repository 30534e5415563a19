"""Where audit records go: a JSON Lines file rotated by size, a Redis Stream trimmed to a bound.

Each sink takes a batch of encoded records (one JSON object each). The file sink writes in a
thread (the event loop never waits on the disk); the stream sink sends one pipeline of
`XADD ... MAXLEN ~ n` per batch, so a collector reads them with XREAD / consumer groups.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis


class Sink(Protocol):
    name: str

    async def write(self, records: list[bytes]) -> None: ...


class FileSink:
    """Appends lines to `path`; past `max_bytes` the file becomes `path.1` (`path.1` becomes
    `path.2`, ...; `keep` of them are kept) and a new one is started."""

    name = "file"

    def __init__(self, path: Path, *, max_bytes: int, keep: int) -> None:
        self._path = path
        self._max = max_bytes
        self._keep = keep

    async def write(self, records: list[bytes]) -> None:
        await asyncio.to_thread(self._write, b"".join(record + b"\n" for record in records))

    def _write(self, data: bytes) -> None:
        path = self._path
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self._max:
            self._rotate()
        # O_APPEND: several workers append to the same file, each line written whole.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        path = self._path
        for index in range(self._keep - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{index + 1}"))
        if path.exists():
            path.replace(path.with_name(f"{path.name}.1"))


class StreamSink:
    """`XADD <key> MAXLEN ~ <maxlen> * record <json>` for each record."""

    name = "stream"

    def __init__(self, redis: Redis, key: str, *, maxlen: int) -> None:
        self._redis = redis
        self._key = key
        self._maxlen = maxlen

    async def write(self, records: list[bytes]) -> None:
        pipe: Any = self._redis.pipeline(transaction=False)
        for record in records:
            pipe.xadd(self._key, {"record": record}, maxlen=self._maxlen, approximate=True)
        await pipe.execute()
