"""Where audit records go: a JSON Lines file rotated by size, a Redis Stream trimmed to a bound.

Each sink takes a batch of encoded records (one JSON object each). The file sink writes in a
daemon thread of its own (the event loop never waits on the disk, and a write that hangs, on a
stalled network file system say, never holds up the worker's exit as the default executor's
threads would); while one write is still hanging, further batches fail at once (`SinkBusy`)
instead of piling up threads. The stream sink sends one pipeline of
`XADD ... MAXLEN ~ n` per batch, so a collector reads them with XREAD / consumer groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fd2.futures import settle

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
        self._busy: asyncio.Future[None] | None = None

    async def write(self, records: list[bytes]) -> None:
        if self._busy is not None and not self._busy.done():
            raise SinkBusy("a previous write has not returned")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        data = b"".join(record + b"\n" for record in records)

        def work() -> None:
            failure: BaseException | None = None
            try:
                self._write(data)
            except BaseException as exc:  # handed to the awaiting coroutine
                failure = exc
            with contextlib.suppress(RuntimeError):  # the loop closed while the disk hung
                loop.call_soon_threadsafe(settle, done, failure)

        self._busy = done
        threading.Thread(target=work, name="fd2-audit-file", daemon=True).start()
        await asyncio.shield(done)

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


class SinkBusy(Exception):
    """The sink's previous write is still running (hung): this batch is not written."""


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
