"""The job store's atomic moves against a real redis-server: one terminal write, leases and
claims, the project's concurrency slots, delayed work, and a batch finalised once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from fd2.jobs import keys
from fd2.jobs.settings import JobSettings
from fd2.jobs.store import JobStore, now_ms

from ..redis_server import RedisServer


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[JobStore]:
    client = redis.asyncio.Redis.from_url(redis_server.url)
    settings = JobSettings(project_concurrency=1, visibility_timeout_s=0.3, max_attempts=2)
    yield JobStore(client, settings)
    await client.aclose()


async def _job(store: JobStore, **extra: str) -> dict[str, str]:
    return await store.submit(
        project="p",
        module="m",
        environment="dev",
        endpoint="/v1/chat/completions",
        body=b"{}",
        identity="",
        **extra,
    )


async def test_the_terminal_state_is_written_once(store: JobStore) -> None:
    job = await _job(store)
    assert await store.start("p", job["id"]) == ("run", 1)
    assert await store.finish(job, "succeeded", result={"n": 1})
    assert not await store.finish(job, "failed", error={"n": 2})
    assert not await store.finish(job, "cancelled")
    record = await store.get("p", job["id"])
    assert record is not None
    assert (record["status"], record["result"]) == ("succeeded", '{"n":1}')
    assert "error" not in record
    assert await store.start("p", job["id"]) == ("done", 0)


async def test_a_held_job_is_started_again_only_once_its_lease_ends(store: JobStore) -> None:
    job = await _job(store)
    assert await store.start("p", job["id"]) == ("run", 1)
    assert (await store.start("p", job["id"]))[0] == "held"
    await asyncio.sleep(0.4)  # the holder went silent: its lease ended
    assert await store.start("p", job["id"]) == ("run", 2)
    await asyncio.sleep(0.4)
    assert (await store.start("p", job["id"]))[0] == "exhausted"  # max_attempts 2


async def test_the_projects_slots_bound_its_running_jobs(store: JobStore) -> None:
    first, second = await _job(store), await _job(store)
    assert (await store.start("p", first["id"]))[0] == "run"
    assert (await store.start("p", second["id"]))[0] == "busy"
    await store.finish(first, "succeeded")
    assert (await store.start("p", second["id"]))[0] == "run"


async def test_delayed_work_reaches_the_stream_when_due(store: JobStore) -> None:
    job = await _job(store)
    await store.start("p", job["id"])
    assert await store.retry_later(job, 0.2, error={"code": "x"}, free=True)
    record = await store.get("p", job["id"])
    assert record is not None and (record["status"], record["attempts"]) == ("queued", "0")
    before = await store.redis.xlen(keys.STREAM)
    assert await store.move_due() == 0
    await asyncio.sleep(0.25)
    assert await store.move_due() == 1
    assert await store.redis.xlen(keys.STREAM) == before + 1


async def test_a_batch_is_finalised_once_when_its_last_request_settles(store: JobStore) -> None:
    await store.redis.hset(keys.batch("p", "b1"), mapping={"total": 3, "settled": 0})
    jobs = [await _job(store, batch_id="b1", custom_id=str(n)) for n in range(3)]
    statuses = ("succeeded", "failed", "cancelled")
    for job, status in zip(jobs, statuses, strict=True):
        assert await store.finish(job, status)
        assert not await store.finish(job, "succeeded")  # a second writer counts nothing
    batch = await store.redis.hgetall(keys.batch("p", "b1"))
    assert (batch[b"completed"], batch[b"failed"], batch[b"settled"]) == (b"1", b"1", b"3")
    entries = await store.redis.xrange(keys.STREAM)
    finalize = [fields for _, fields in entries if fields[b"kind"] == b"finalize"]
    assert finalize == [{b"kind": b"finalize", b"project": b"p", b"id": b"b1"}]


async def test_an_expired_job_does_not_start(store: JobStore) -> None:
    job = store.new_record(
        project="p",
        module="m",
        environment="dev",
        endpoint="/v1/x",
        body=b"{}",
        identity="",
        expires_at_ms=now_ms() - 1000,  # past, but the record is kept for the retention
    )
    async with store.redis.pipeline(transaction=True) as pipe:
        store.add(pipe, job)
        await pipe.execute()
    assert (await store.start("p", job["id"]))[0] == "expired"
