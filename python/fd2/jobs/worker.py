"""The consumer of the job stream: runs jobs, delivers webhooks, finalises batches.

Each worker process joins one consumer group under a name of its own and reads the stream with
XREADGROUP; an entry is acknowledged (and deleted) only once its work is done, so work held by a
process that died stays pending and is claimed by another (XAUTOCLAIM) once it has been idle
longer than the visibility timeout. A live worker keeps the work it holds from looking idle
(XCLAIM of its own entry, the job's lease pushed on) every third of that timeout. Running the
same job twice is possible (at-least-once); writing its result twice is not (`JobStore.finish`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fd2.jobs import keys
from fd2.jobs.runner import JobRunner, Outcome
from fd2.jobs.store import JobStore

if TYPE_CHECKING:
    from fd2.control.tasks import Supervisor

_log = logging.getLogger("fd2.jobs")
_BLOCK_MS: Final = 1000
_MOVE_EVERY_S: Final = 0.25
_SAMPLE_EVERY_S: Final = 5.0
_POISON_AFTER: Final = 5
"""Failures of one stream entry's handler (not Redis failures) before it is dead-lettered."""
RECLAIM_MARGIN: Final = 1.25
"""Work is claimed again after 1.25 visibility timeouts without a sign of life, while a job's
lease ends after one: a job is never claimed while its lease looks alive."""

Handler = Callable[[str, str], Awaitable[None]]


class JobWorker:
    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        *,
        handlers: Mapping[str, Handler],
    ) -> None:
        self.store = store
        self.redis = store.redis
        self.settings = store.settings
        self.runner = runner
        self._handlers: dict[str, Handler] = {"run": self._run, **handlers}
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._vt = self.settings.visibility_timeout_s

    def start(self, tasks: Supervisor) -> None:
        """The worker's loops, supervised (one that fails starts again after a back-off)."""
        for number in range(self.settings.workers):
            tasks.spawn(f"jobs consumer {number}", self._consume)
        tasks.spawn("jobs reclaim", self._reclaim)
        tasks.every("jobs due", _MOVE_EVERY_S, self.store.move_due)
        tasks.every("jobs depth", _SAMPLE_EVERY_S, self._sample, first_delay_s=0.0)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(keys.STREAM, keys.GROUP, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: made by another worker already
            if "BUSYGROUP" not in str(exc):
                raise

    async def _sample(self) -> None:
        await self.store.counters.sample(self.redis)

    async def _consume(self) -> None:
        await self.ensure_group()
        while True:
            answer = await self.redis.xreadgroup(
                keys.GROUP, self.consumer, {keys.STREAM: ">"}, count=1, block=_BLOCK_MS
            )
            for _, entries in answer or ():
                for entry_id, fields in entries:
                    await self._handle(entry_id, fields)

    async def _reclaim(self) -> None:
        await self.ensure_group()
        idle_ms = int(self._vt * RECLAIM_MARGIN * 1000)
        while True:
            await asyncio.sleep(max(self._vt / 4, 0.2))
            cursor: Any = "0-0"
            while True:
                answer = await self.redis.xautoclaim(
                    keys.STREAM, keys.GROUP, self.consumer, idle_ms, start_id=cursor, count=10
                )
                cursor, claimed = answer[0], answer[1]
                for entry_id, fields in claimed:
                    if fields:  # an entry deleted meanwhile comes back empty
                        _log.info("job work %s: claimed again from a silent worker", entry_id)
                        self.store.counters.reclaimed += 1
                        await self._handle(entry_id, fields)
                if cursor in (b"0-0", "0-0"):
                    break

    async def _handle(self, entry_id: Any, fields: Mapping[bytes, bytes]) -> None:
        kind = fields.get(b"kind", b"").decode()
        project = fields.get(b"project", b"").decode()
        item = fields.get(b"id", b"").decode()
        handler = self._handlers.get(kind)
        if handler is not None:
            beat = asyncio.get_running_loop().create_task(self._keep_alive(entry_id))
            try:
                await handler(project, item)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                raise  # Redis is away: the loop starts again; the entry stays pending
            except Exception as exc:
                if not await self._give_up(entry_id, kind, project, item, exc):
                    return  # pending: claimed again after the visibility timeout
            finally:
                beat.cancel()
                await asyncio.gather(beat, return_exceptions=True)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(keys.STREAM, keys.GROUP, entry_id)
            pipe.xdel(keys.STREAM, entry_id)
            await pipe.execute()

    async def _give_up(
        self, entry_id: Any, kind: str, project: str, item: str, exc: Exception
    ) -> bool:
        """A handler that failed: True (drop the entry, dead-lettered) once it failed
        `_POISON_AFTER` times, so one bad entry cannot stall the loops for ever."""
        name = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        marker = f"{keys.PREFIX}:failures:{name}"
        failures = int(await self.redis.incr(marker))
        await self.redis.expire(marker, 86400)
        _log.error(
            "job work %s (%s of %s/%s) failed: %s (%d time(s))",
            entry_id,
            kind,
            project,
            item,
            type(exc).__name__,
            failures,
        )
        if failures < _POISON_AFTER:
            return False
        await self.redis.xadd(
            keys.DEAD,
            {"kind": kind, "project": project, "id": item, "error": type(exc).__name__},
            maxlen=10000,
            approximate=True,
        )
        if kind == "run":  # the job must not wait for ever on work that was dropped
            record = await self.store.get(project, item)
            try:
                if record is not None:
                    await self.store.finish(
                        {**record, "project": project, "id": item}, "failed", error=_internal()
                    )
            except Exception as failed:  # a record too broken to end: it expires
                _log.error("job %s/%s cannot be ended: %s", project, item, type(failed).__name__)
        return True

    async def _keep_alive(self, entry_id: Any) -> None:
        while True:
            await asyncio.sleep(self._vt / 3)
            await self.redis.xclaim(
                keys.STREAM, keys.GROUP, self.consumer, 0, [entry_id], justid=True
            )

    async def _run(self, project: str, job_id: str) -> None:
        record = await self.store.get(project, job_id)
        if record is None:
            return  # expired and gone
        batch_id = record.get("batch_id")
        if batch_id and await self._batch_cancelling(project, batch_id):
            # Seen before the batch's own cancel work, which may wait behind its requests.
            await self.store.finish(record, "cancelled")
            return
        outcome, attempt = await self.store.start(project, job_id)
        if outcome == "expired":
            await self.store.finish(record, "expired", error=_expired())
        elif outcome == "exhausted":
            await self.store.finish(record, "failed", error=_interrupted(attempt))
        elif outcome == "busy":  # the project's concurrency is taken: look again shortly
            await self.store.retry_later(record, 0.2 + random.random() * 0.3)  # noqa: S311
        elif outcome == "run":
            await self._execute(record, attempt)

    async def _batch_cancelling(self, project: str, batch_id: str) -> bool:
        status = await self.redis.hget(keys.batch(project, batch_id), "status")
        return status in (b"cancelling", b"cancelled")

    async def _execute(self, record: Mapping[str, str], attempt: int) -> None:
        project, job_id = record["project"], record["id"]
        task = asyncio.get_running_loop().create_task(self.runner.run(record))
        watch = asyncio.get_running_loop().create_task(self._watch(project, job_id, task))
        try:
            result = await task
        except asyncio.CancelledError:
            if watch.done() and not watch.cancelled():  # cancelled by its owner: nothing to write
                return
            # This worker is stopping: give the job back at once rather than after the timeout.
            await asyncio.shield(self.store.retry_later(record, 0.0, free=True))
            raise
        except Exception as exc:
            _log.warning("job %s failed in the gateway: %s", job_id, type(exc).__name__)
            result = Outcome("transient", error=_internal())
        finally:
            watch.cancel()
        await self._settle(record, attempt, result)

    async def _watch(self, project: str, job_id: str, task: asyncio.Task[Outcome]) -> None:
        """Pushes the job's lease on while it runs; cancels it once its owner cancelled it."""
        while True:
            await asyncio.sleep(self._vt / 3)
            status = await self.store.extend(project, job_id)
            if status != "running":
                _log.info("job %s: %s while running; stopping it", job_id, status)
                task.cancel()
                return

    async def _settle(self, record: Mapping[str, str], attempt: int, outcome: Outcome) -> None:
        if outcome.kind == "succeeded":
            await self.store.finish(record, "succeeded", result=outcome.result)
        elif outcome.kind == "limited":
            await self.store.retry_later(
                record, outcome.retry_after_s, error=outcome.error, free=True
            )
        elif outcome.kind == "transient" and attempt < self.settings.max_attempts:
            delay = min(2.0**attempt, 60.0) * random.uniform(0.5, 1.0)  # noqa: S311
            await self.store.retry_later(record, delay, error=outcome.error)
        else:
            await self.store.finish(record, "failed", error=outcome.error)


def _expired() -> dict[str, Any]:
    return {
        "status_code": None,
        "type": "expired",
        "code": "job_expired",
        "message": "The job expired before it could run.",
    }


def _interrupted(attempt: int) -> dict[str, Any]:
    return {
        "status_code": None,
        "type": "server_error",
        "code": "job_interrupted",
        "message": f"The job was interrupted {attempt - 1} times; it is not tried again.",
    }


def _internal() -> dict[str, Any]:
    return {
        "status_code": 500,
        "type": "server_error",
        "code": "internal_error",
        "message": "The gateway failed to run this job.",
    }
