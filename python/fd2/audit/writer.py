"""The worker's audit writer: a bounded queue the audit step puts records into without waiting,
drained in batches by one supervised background task into every sink.

A request never waits for, or fails because of, its audit record: a full queue drops the record,
a failing sink loses that batch; both are counted (`fd2_audit_dropped`) and logged once per
interval (`fd2.telemetry.log_throttle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Final

from fd2.audit.sinks import Sink
from fd2.serving import request_metrics
from fd2.telemetry.log_throttle import ThrottledLog

QUEUE_SIZE: Final = 10_000
BATCH: Final = 256
SINK_TIMEOUT_S: Final = 5.0
"""The longest one batch may take in one sink before it is counted lost (a hung disk, a
Redis that does not answer)."""
_log = logging.getLogger("fd2.audit")


class AuditWriter:
    def __init__(self, sinks: Sequence[Sink], *, queue_size: int = QUEUE_SIZE) -> None:
        self.sinks = tuple(sinks)
        self._queue: asyncio.Queue[bytes] | None = None
        self._size = queue_size
        self._throttled = ThrottledLog(_log)
        self.written = 0

    def _queue_now(self) -> asyncio.Queue[bytes]:
        queue = self._queue
        if queue is None:
            queue = self._queue = asyncio.Queue(self._size)
        return queue

    def submit(self, record: bytes) -> None:
        """Queues one encoded record; never waits (a full queue drops it, counted)."""
        try:
            self._queue_now().put_nowait(record)
        except asyncio.QueueFull:
            _dropped("queue", 1)
            self._throttled.warning(
                "audit-full", "audit: the queue is full (%d records); records dropped", self._size
            )

    async def run(self) -> None:
        """Drains the queue into the sinks until cancelled; what is queued then is written
        before it ends (shutdown)."""
        queue = self._queue_now()
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                await self._write(batch)
        finally:
            rest = []
            while not queue.empty():
                rest.append(queue.get_nowait())
            if rest:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self._write(rest))

    async def _write(self, batch: list[bytes]) -> None:
        # Every sink at once, each bounded in time: one that hangs costs the others nothing.
        await asyncio.gather(*(self._write_to(sink, batch) for sink in self.sinks))
        self.written += len(batch)

    async def _write_to(self, sink: Sink, batch: list[bytes]) -> None:
        try:
            await asyncio.wait_for(sink.write(batch), SINK_TIMEOUT_S)
        except Exception as exc:  # a sink's failure is counted, never a request's
            _dropped(sink.name, len(batch))
            self._throttled.warning(
                f"audit-{sink.name}",
                "audit: the %s sink failed (%s); %d records lost",
                sink.name,
                type(exc).__name__,
                len(batch),
            )


def _dropped(sink: str, count: int) -> None:
    metrics = request_metrics.current()
    if metrics is not None:
        metrics.audit_dropped.labels(sink).inc(count)
