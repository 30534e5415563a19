"""The shared limiter against a real redis-server: the script decides exactly as GCRA should,
atomically under concurrency, and Redis failures follow the configured policy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from fd2.limits.redis_client import make_redis
from fd2.limits.shared import SharedLimiter
from fd2.limits.specs import specs_for
from fd2.serving.errors import ServiceUnavailable

from ..conftest import free_port
from ..redis_server import running_redis


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[SharedLimiter]:
    # The script is under test here, not the pool: a connection for every concurrent call, and
    # `closed`, so that a Redis hiccup fails loudly instead of deciding with local buckets.
    with running_redis(tmp_path) as url:
        client = redis.asyncio.Redis.from_url(url, max_connections=512)
        limiter = SharedLimiter(client, on_failure="closed")
        yield limiter
        await limiter.aclose()


async def test_a_burst_gets_exactly_the_bucket(shared: SharedLimiter) -> None:
    specs = specs_for("burst", {"requests_per_minute": 50})
    decisions = await asyncio.gather(*(shared.acquire(specs, [1]) for _ in range(200)))
    admitted = [d for d in decisions if d.allowed]
    # 60 s / 50 = 1.2 s per refill: at most one more can arrive during the burst
    assert 50 <= len(admitted) <= 51
    assert min(d.remaining[0] for d in admitted) == 0
    refused = [d for d in decisions if not d.allowed]
    assert refused
    assert all(0 < d.retry_after_us <= 1_200_000 for d in refused)


async def test_all_or_nothing_across_buckets(shared: SharedLimiter) -> None:
    wide = specs_for("wide", {"requests_per_minute": 100})
    narrow = specs_for("narrow", {"requests_per_minute": 2})
    both = wide + narrow
    results = [await shared.acquire(both, [1, 1]) for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, False, False, False]
    assert (await shared.acquire(wide, [1])).remaining == [97]


async def test_tokens_reserve_and_reconcile(shared: SharedLimiter) -> None:
    tokens = specs_for("tok", {"tokens_per_minute": 1000})
    assert (await shared.acquire(tokens, [800])).allowed
    assert not (await shared.acquire(tokens, [300])).allowed
    await shared.adjust(tokens, [-500])  # the call used 300 of its 800
    decision = await shared.acquire(tokens, [650])
    assert decision.allowed
    assert decision.remaining[0] in (50, 51)


async def test_fail_open_uses_local_limits_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = SharedLimiter(make_redis(f"redis://127.0.0.1:{free_port()}/0"), on_failure="open")
    specs = specs_for("down", {"requests_per_minute": 3})
    with caplog.at_level(logging.ERROR, logger="fd2.limits"):
        results = [(await limiter.acquire(specs, [1])).allowed for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    await limiter.aclose()


async def test_fail_closed_refuses() -> None:
    limiter = SharedLimiter(make_redis(f"redis://127.0.0.1:{free_port()}/0"), on_failure="closed")
    with pytest.raises(ServiceUnavailable):
        await limiter.acquire(specs_for("down", {"requests_per_second": 5}), [1])
    await limiter.aclose()
