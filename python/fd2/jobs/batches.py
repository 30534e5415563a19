"""OpenAI's Batch API on the job machinery: each request of the input file becomes a job of the
batch (run, retried and limited as any job), counted into the batch as it ends; the job that
settles the last request queues the batch's finalisation, which writes the output and error
files. Status: validating → in_progress → finalizing → completed, or cancelling → cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson

from fd2.jobs import keys
from fd2.jobs.files import check_batch_input, save_file
from fd2.jobs.http import Conflict, limit_of, page, query, send_json, tail_id
from fd2.jobs.records import decode_hash, identity_record, new_id
from fd2.jobs.store import now_ms
from fd2.serving.errors import BadRequest, NotFound
from fd2.serving.request import Request
from fd2.types import Send

if TYPE_CHECKING:
    from fd2.jobs.api import JobRoute
    from fd2.jobs.service import JobService

BATCHES_PATH: Final = "/v1/batches"
WINDOW_S: Final = {"24h": 86400}
_CHUNK: Final = 500
_SHRINK: Final = """
-- KEYS: batch, stream. ARGV: jobs made, project, batch id.
redis.call('HSET', KEYS[1], 'total', ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'settled')) >= tonumber(ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'kind', 'finalize', 'project', ARGV[2], 'id', ARGV[3])
end
"""
_IN_PROGRESS: Final = """
redis.call('HSETNX', KEYS[1], 'in_progress_at', ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'validating' then
  redis.call('HSET', KEYS[1], 'status', 'in_progress')
end
"""
_TIMES: Final = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def batch_view(record: Mapping[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": record["id"],
        "object": "batch",
        "endpoint": record["endpoint"],
        "errors": None,
        "input_file_id": record["input_file_id"],
        "completion_window": record["completion_window"],
        "status": record["status"],
        "output_file_id": record.get("output_file_id") or None,
        "error_file_id": record.get("error_file_id") or None,
        "request_counts": {
            "total": int(record.get("total", 0)),
            "completed": int(record.get("completed", 0)),
            "failed": int(record.get("failed", 0)),
        },
        "metadata": orjson.loads(record["metadata"]) if record.get("metadata") else None,
    }
    for name in _TIMES:
        value = record.get(name)
        view[name] = int(value) if value else None
    return view


class BatchesApi:
    def __init__(self, service: JobService, route: JobRoute) -> None:
        self._service = service
        self._route = route

    def handlers(self) -> dict[str, dict[str, Any]]:
        return {
            BATCHES_PATH: {"POST": self.create, "GET": self.list},
            BATCHES_PATH + "/*": {"GET": self.get, "POST": self.cancel},
        }

    async def create(self, request: Request, send: Send) -> None:
        store = self._service.require_store()
        redis = store.redis
        body = await request.json_object()
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str) or endpoint not in self._route.endpoints:
            raise BadRequest("endpoint is not an endpoint of this module.", param="endpoint")
        window = body.get("completion_window")
        if window not in WINDOW_S:
            raise BadRequest("completion_window must be '24h'.", param="completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequest("metadata must be an object.", param="metadata")
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str):
            raise BadRequest("input_file_id is required.", param="input_file_id")
        project = request.project
        meta = await redis.hgetall(keys.file(project, file_id))
        content = await redis.get(keys.file_content(project, file_id))
        if not meta or content is None or decode_hash(meta).get("module") != request.module:
            raise NotFound(f"No file {file_id!r}.")
        if decode_hash(meta).get("purpose") != "batch":
            raise BadRequest("The input file's purpose is not 'batch'.", param="input_file_id")
        lines = check_batch_input(
            content, frozenset({endpoint}), self._service.settings.batch_max_requests
        )
        created = now_ms()
        expires = created + WINDOW_S[str(window)] * 1000
        batch_id = new_id("batch")
        record = {
            "id": batch_id,
            "project": project,
            "module": request.module,
            "environment": request.environment,
            "endpoint": endpoint,
            "input_file_id": file_id,
            "completion_window": str(window),
            "status": "validating",
            "created_at": str(created // 1000),
            "expires_at": str(expires // 1000),
            "total": str(len(lines)),
            "completed": "0",
            "failed": "0",
            "settled": "0",
        }
        if metadata is not None:
            record["metadata"] = orjson.dumps(metadata).decode()
        record["identity"] = identity_record(request.identity)
        record["expires_at_ms"] = str(expires)
        key = keys.batch(project, batch_id)
        keep_ms = expires + int(self._service.settings.retention_s * 1000)
        # The batch and the work that makes its jobs, in one transaction: a gateway that dies
        # while making them leaves that work pending, and another worker finishes it.
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=record)
            pipe.pexpireat(key, keep_ms)
            pipe.zadd(keys.batches_index(project, request.module), {batch_id: created})
            pipe.expire(keys.batches_index(project, request.module), store.retention_s())
            pipe.xadd(keys.STREAM, {"kind": "expand", "project": project, "id": batch_id})
            await pipe.execute()
        await send_json(send, 200, batch_view(record))

    async def get(self, request: Request, send: Send) -> None:
        record = await self._record(request)
        await send_json(send, 200, batch_view(record))

    async def cancel(self, request: Request, send: Send) -> None:
        redis = self._service.require_store().redis
        batch_id, more = tail_id(request, BATCHES_PATH)
        if more != "cancel":
            raise NotFound(f"Unknown endpoint {request.path}.")
        record = await self._record(request)
        if record["status"] not in ("validating", "in_progress"):
            if record["status"] in ("cancelling", "cancelled"):
                await send_json(send, 200, batch_view(record))
                return
            raise Conflict(f"Batch {batch_id} has already ended ({record['status']}).")
        key = keys.batch(request.project, batch_id)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"status": "cancelling", "cancelling_at": int(time.time())})
            pipe.xadd(
                keys.STREAM, {"kind": "cancel_batch", "project": request.project, "id": batch_id}
            )
            await pipe.execute()
        record = decode_hash(await redis.hgetall(key))
        await send_json(send, 200, batch_view(record))

    async def list(self, request: Request, send: Send) -> None:
        redis = self._service.require_store().redis
        params = query(request)
        index = keys.batches_index(request.project, request.module)
        start = 0
        after = params.get("after")
        if after:
            rank = await redis.zrevrank(index, after)
            start = int(rank) + 1 if rank is not None else 0
        limit = limit_of(params)
        ids = await redis.zrevrange(index, start, start + limit)
        rows = []
        for batch_id in ids[:limit]:
            raw = await redis.hgetall(keys.batch(request.project, batch_id.decode()))
            if raw:
                rows.append(batch_view(decode_hash(raw)))
        await send_json(send, 200, page(rows, len(ids) > limit))

    async def _record(self, request: Request) -> dict[str, str]:
        redis = self._service.require_store().redis
        batch_id, _ = tail_id(request, BATCHES_PATH)
        raw = await redis.hgetall(keys.batch(request.project, batch_id))
        if not raw or decode_hash(raw).get("module") != request.module:
            raise NotFound(f"No batch {batch_id!r}.")
        return decode_hash(raw)


class BatchWork:
    """The batch work the job workers do: make a batch's jobs, cancel them, write its files."""

    def __init__(self, service: JobService) -> None:
        self._service = service

    async def expand(self, project: str, batch_id: str) -> None:
        """One job per request of the input file, ids `<batch id>_<line index>`: done again
        after a crash, it makes only the jobs that are missing."""
        store = self._service.require_store()
        redis = store.redis
        key = keys.batch(project, batch_id)
        raw = await redis.hgetall(key)
        if not raw:
            return
        batch = decode_hash(raw)
        if batch["status"] not in ("validating", "cancelling"):
            return
        content = await redis.get(keys.file_content(project, batch["input_file_id"]))
        if content is None:
            await redis.hset(key, mapping={"status": "failed", "failed_at": int(time.time())})
            return
        lines = check_batch_input(content, frozenset({batch["endpoint"]}), len(content) + 1)
        for start in range(0, len(lines), _CHUNK):
            if await redis.hget(key, "status") == b"cancelling":
                # The jobs not made yet will never settle: the batch counts only those made.
                await redis.eval(_SHRINK, 2, key, keys.STREAM, start, project, batch_id)
                return
            ids = [f"{batch_id}_{n}" for n in range(start, min(start + _CHUNK, len(lines)))]
            async with redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.exists(keys.job(project, job_id))
                present = await pipe.execute()
            async with redis.pipeline(transaction=True) as pipe:
                for job_id, line, exists in zip(ids, lines[start:], present, strict=False):
                    if exists:
                        continue
                    job = store.new_record(
                        project=project,
                        module=batch["module"],
                        environment=batch["environment"],
                        endpoint=batch["endpoint"],
                        body=orjson.dumps(line["body"]),
                        identity=batch.get("identity", ""),
                        batch_id=batch_id,
                        custom_id=line["custom_id"],
                        expires_at_ms=int(batch["expires_at_ms"]),
                    )
                    job["id"] = job_id
                    store.add(pipe, job)
                await pipe.execute()
        # Only from validating: every request may have run and the batch been finalised already.
        await redis.eval(_IN_PROGRESS, 1, key, int(time.time()))

    async def cancel(self, project: str, batch_id: str) -> None:
        store = self._service.require_store()
        for ids in await self._chunks(project, batch_id):
            for job_id in ids:
                record = await store.get(project, job_id)
                if record is not None:
                    await store.finish(record, "cancelled")

    async def finalize(self, project: str, batch_id: str) -> None:
        store = self._service.require_store()
        redis = store.redis
        key = keys.batch(project, batch_id)
        batch = await redis.hgetall(key)
        if not batch:
            return
        record = decode_hash(batch)
        if record["status"] in ("completed", "cancelled", "expired", "failed"):
            return  # finalised already (this work was delivered twice)
        cancelled = record["status"] == "cancelling"
        await redis.hset(key, mapping={"finalizing_at": int(time.time())})
        if not cancelled:
            await redis.hset(key, "status", "finalizing")
        output: list[bytes] = []
        errors: list[bytes] = []
        expired = False
        for ids in await self._chunks(project, batch_id):
            async with redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(keys.job(project, job_id))
                rows = await pipe.execute()
            for raw in rows:
                if raw:
                    job = decode_hash(raw)
                    expired = expired or job["status"] == "expired"
                    line, ok = output_line(job)
                    (output if ok else errors).append(line)
        fields: dict[str, Any] = {}
        if output:
            saved = await save_file(
                self._service,
                project,
                record["module"],
                b"".join(output),
                filename=f"{batch_id}_output.jsonl",
                purpose="batch_output",
                file_id=f"file-{batch_id}-output",
            )
            fields["output_file_id"] = saved["id"]
        if errors:
            saved = await save_file(
                self._service,
                project,
                record["module"],
                b"".join(errors),
                filename=f"{batch_id}_errors.jsonl",
                purpose="batch_output",
                file_id=f"file-{batch_id}-errors",
            )
            fields["error_file_id"] = saved["id"]
        done = "cancelled" if cancelled else "expired" if expired else "completed"
        fields.update({"status": done, f"{done}_at": int(time.time())})
        await redis.hset(key, mapping=fields)

    async def _chunks(self, project: str, batch_id: str) -> list[list[str]]:
        redis = self._service.require_store().redis
        total = int(await redis.hget(keys.batch(project, batch_id), "total") or 0)
        ids = [f"{batch_id}_{n}" for n in range(total)]
        return [ids[i : i + _CHUNK] for i in range(0, total, _CHUNK)]


def output_line(job: Mapping[str, str]) -> tuple[bytes, bool]:
    """One line of the output (True) or error file, in OpenAI's batch output format."""
    line: dict[str, Any] = {"id": f"batch_req_{job['id']}", "custom_id": job.get("custom_id")}
    result: Any = orjson.loads(job["result"]) if job.get("result") else None
    error = orjson.loads(job["error"]) if job.get("error") else None
    ok = job["status"] == "succeeded" and result is not None
    if ok:
        line["response"] = {
            "status_code": result["status_code"],
            "request_id": job["id"],
            "body": result["body"],
        }
        line["error"] = None
    elif isinstance(error, dict) and error.get("status_code"):
        detail = {k: v for k, v in error.items() if k != "status_code"}
        line["response"] = {
            "status_code": error["status_code"],
            "request_id": job["id"],
            "body": {"error": detail},
        }
        line["error"] = None
    else:
        code = {"cancelled": "batch_cancelled", "expired": "batch_expired"}.get(
            job["status"], "request_failed"
        )
        message = error.get("message") if isinstance(error, dict) else None
        line["response"] = None
        line["error"] = {"code": code, "message": message or f"The request was {job['status']}."}
    return orjson.dumps(line) + b"\n", ok
