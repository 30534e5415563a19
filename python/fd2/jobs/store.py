"""Jobs in Redis: submit, read, list, cancel, and the atomic state moves workers make.

One hash per job (`keys.job`), kept until `expires_at` plus the retention; one sorted set per
project indexes them by creation time for listing; the work itself is an entry on one Redis
Stream read by a consumer group (`fd2.jobs.worker`). Keys are per project, so a job id of
another project is simply not found.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson

from fd2.jobs import keys, scripts
from fd2.jobs.metrics import JobCounters
from fd2.jobs.records import decode_hash, new_id
from fd2.jobs.settings import JobSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

STATUSES: Final = frozenset({"queued", "running", *scripts.TERMINAL})
_LIST_SCAN: Final = 1000
"""Index entries one list call looks at (a status filter skips the others)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class JobStore:
    def __init__(self, redis: Redis, settings: JobSettings) -> None:
        # redis-py's command types are unions of sync and async answers: untyped here.
        self.redis: Any = redis
        self.settings = settings
        self.counters = JobCounters()
        self._start = redis.register_script(scripts.START)
        self._finish = redis.register_script(scripts.FINISH)
        self._retry = redis.register_script(scripts.RETRY)
        self._move_due = redis.register_script(scripts.MOVE_DUE)

    def retention_s(self) -> int:
        return int(self.settings.ttl_s + self.settings.retention_s)

    async def submit(self, **fields: Any) -> dict[str, str]:
        """A new job, queued (fields: those of `new_record`)."""
        record = self.new_record(**fields)
        async with self.redis.pipeline(transaction=True) as pipe:
            self.add(pipe, record)
            await pipe.execute()
        return record

    def new_record(
        self,
        *,
        project: str,
        module: str,
        environment: str,
        endpoint: str,
        body: bytes,
        identity: str,
        webhook: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        batch_id: str = "",
        custom_id: str = "",
        expires_at_ms: int | None = None,
    ) -> dict[str, str]:
        created = now_ms()
        expires = expires_at_ms or created + int(self.settings.ttl_s * 1000)
        record = {
            "id": new_id("job"),
            "project": project,
            "module": module,
            "environment": environment,
            "endpoint": endpoint,
            "body": body.decode(),
            "identity": identity,
            "status": "queued",
            "created_at": str(created // 1000),
            "created_at_ms": str(created),
            "expires_at": str(expires // 1000),
            "expires_at_ms": str(expires),
            "attempts": "0",
        }
        if webhook is not None:
            record["webhook"] = orjson.dumps(webhook).decode()
            record["webhook_status"] = "waiting"
        if metadata is not None:
            record["metadata"] = orjson.dumps(metadata).decode()
        if batch_id:
            record["batch_id"] = batch_id
            record["custom_id"] = custom_id
        return record

    def add(self, pipe: Any, record: Mapping[str, str]) -> None:
        """Queue the commands that store and enqueue `record` on `pipe` (a transaction)."""
        project, job_id = record["project"], record["id"]
        key = keys.job(project, job_id)
        pipe.hset(key, mapping=record)
        pipe.pexpireat(key, int(record["expires_at_ms"]) + int(self.settings.retention_s * 1000))
        if not record.get("batch_id"):  # a batch's requests are read through the batch
            index = keys.index(project, record["module"])
            pipe.zadd(index, {job_id: int(record["created_at_ms"])})
            pipe.expire(index, self.retention_s())
        pipe.xadd(keys.STREAM, {"kind": "run", "project": project, "id": job_id})

    async def get(self, project: str, job_id: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(keys.job(project, job_id))
        return decode_hash(raw) if raw else None

    async def list(
        self, project: str, module: str, *, status: str | None, limit: int, after: str | None
    ) -> tuple[list[dict[str, str]], bool]:
        """The jobs submitted through a module's route, newest first, after the job `after`;
        and whether more follow."""
        index = keys.index(project, module)
        start = 0
        if after:
            rank = await self.redis.zrevrank(index, after)
            if rank is None:
                return [], False
            start = int(rank) + 1
        found: list[dict[str, str]] = []
        gone: list[str] = []
        while len(found) <= limit:
            ids = await self.redis.zrevrange(index, start, start + _LIST_SCAN // 10 - 1)
            if not ids:
                break
            start += len(ids)
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(keys.job(project, job_id.decode()))
                rows = await pipe.execute()
            for job_id, raw in zip(ids, rows, strict=True):
                if not raw:
                    gone.append(job_id.decode())  # expired: its index entry goes too
                    continue
                record = decode_hash(raw)
                if status is None or record["status"] == status:
                    found.append(record)
            if start >= _LIST_SCAN and status is not None:
                break
        if gone:
            await self.redis.zrem(index, *gone)
        return found[:limit], len(found) > limit

    async def start(self, project: str, job_id: str) -> tuple[str, int]:
        """Take a slot of the project's concurrency and mark the job running: `run` (with the
        attempt number), or why not (`gone`, `done`, `expired`, `held`, `busy`, `exhausted`)."""
        now = now_ms()
        lease = now + int(self.settings.visibility_timeout_s * 1000)
        answer = await self._start(
            keys=[keys.job(project, job_id), keys.running(project)],
            args=[
                now,
                lease,
                self.settings.project_concurrency,
                self.settings.max_attempts,
                job_id,
            ],
        )
        outcome = answer[0].decode()
        if outcome == "run":
            self.counters.started += 1
        return outcome, int(answer[1]) if len(answer) > 1 else 0

    async def extend(self, project: str, job_id: str) -> str | None:
        """A running job's lease pushed on (its worker is alive); its status, to see a cancel."""
        lease = now_ms() + int(self.settings.visibility_timeout_s * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.running(project), {job_id: lease}, xx=True)
            pipe.hget(keys.job(project, job_id), "status")
            _, status = await pipe.execute()
        return status.decode() if status is not None else None

    async def finish(
        self,
        record: Mapping[str, str],
        status: str,
        *,
        result: Any = None,
        error: Any = None,
    ) -> bool:
        """Write the job's terminal state unless one was written already (then False)."""
        project, job_id = record["project"], record["id"]
        batch_id = record.get("batch_id", "")
        count = ""
        if batch_id:
            count = {"succeeded": "completed", "failed": "failed"}.get(status, "cancelled")
        won = await self._finish(
            keys=[
                keys.job(project, job_id),
                keys.running(project),
                keys.STREAM,
                keys.batch(project, batch_id) if batch_id else keys.job(project, job_id),
            ],
            args=[
                status,
                now_ms() // 1000,
                orjson.dumps(result) if result is not None else "",
                orjson.dumps(error) if error is not None else "",
                job_id,
                count,
            ],
        )
        if won:
            self.counters.finished[status] += 1
        return bool(won)

    async def retry_later(
        self, record: Mapping[str, str], delay_s: float, *, error: Any = None, free: bool = False
    ) -> bool:
        """Queue the job again after `delay_s` (limits, a transient upstream error). `free`:
        the attempt does not count (it never reached the module)."""
        project, job_id = record["project"], record["id"]
        return bool(
            await self._retry(
                keys=[keys.job(project, job_id), keys.running(project), keys.DELAYED],
                args=[
                    now_ms() + int(delay_s * 1000),
                    delayed_member("run", project, job_id),
                    job_id,
                    orjson.dumps(error) if error is not None else "",
                    "1" if free else "0",
                ],
            )
        )

    async def later(self, kind: str, project: str, item_id: str, delay_s: float) -> None:
        await self.redis.zadd(
            keys.DELAYED, {delayed_member(kind, project, item_id): now_ms() + int(delay_s * 1000)}
        )

    async def move_due(self) -> int:
        return int(await self._move_due(keys=[keys.DELAYED, keys.STREAM], args=[now_ms(), 100]))


def delayed_member(kind: str, project: str, item_id: str) -> str:
    # The nonce keeps two schedulings of the same work apart (a sorted set member is unique).
    return orjson.dumps(
        {"kind": kind, "project": project, "id": item_id, "n": new_id("d")}
    ).decode()
