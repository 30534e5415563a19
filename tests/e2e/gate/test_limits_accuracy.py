"""Accuracy across replicas: three fd2 processes share one real Redis; a concurrent burst at
several times the limit is admitted within ±1% of what the limit allows over the burst's window.

GCRA semantics: a limit of L per window W admits L at once, then L/W per second. So over a burst
that lasts from t0 to t1 (read from the Redis server's clock, the one the script decides with)
the allowance is L + (t1 - t0)·L/W. Per-replica limits would admit about three times as much.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import aiohttp
import httpx
import pytest
import redis.asyncio

from fd2_inference.metering import count_chat

from ..conftest import Service
from ..redis_server import running_redis
from .conftest import start_auth_fd2

REQUESTS_PER_MINUTE = 600
TOKENS_PER_MINUTE = 6000
# fd2 and the stand-in both count prompt tokens as OpenAI does, so reservations equal usage and
# this measures the limiter, not a token estimate.
PROMPT = "a b c d e f"
PROMPT_TOKENS = count_chat([{"role": "user", "content": PROMPT}])
COMPLETION = 8  # the stand-in streams `chunks-8` as 8 tokens; max_tokens reserves exactly that
REPLICAS = 3
CONCURRENCY = 24


def meter_manifest(upstream: str) -> dict:
    def module(name: str, limits: dict) -> dict:
        return {
            "module_type": "inference_endpoint",
            "name": name,
            "auth": {"mode": "none"},
            "limits": limits,
            "config": {"endpoint_url": f"http://{upstream}/v1/chat/completions"},
        }

    return {
        "project_id": "meter",
        "environment": "development",
        "environments": {"development": {}},
        "modules": [
            module("requests", {"requests_per_minute": REQUESTS_PER_MINUTE}),
            module("tokens", {"tokens_per_minute": TOKENS_PER_MINUTE}),
            module("warm-up", {"requests_per_second": 1_000_000}),
        ],
    }


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, standin: Service):
    directory = tmp_path_factory.mktemp("accuracy")
    manifests = directory / "manifests"
    manifests.mkdir()
    (manifests / "meter.json").write_text(json.dumps(meter_manifest(standin.address)))
    with running_redis(directory) as url:
        servers: list[Service] = []
        try:
            # extend() appends as it goes: replicas started before a failure are still stopped
            servers.extend(
                # No job consumers: they run Lua scripts on the same Redis in the background,
                # and the bursts below count the limiter's round trips (EVALSHA) alone.
                start_auth_fd2(
                    manifests,
                    directory,
                    "--redis-url",
                    url,
                    "--jobs-workers",
                    "0",
                    name=f"fd2-{i}",
                )
                for i in range(REPLICAS)
            )
            # Redis keeps scripts server-wide: one request loads the limiter's script for all
            # replicas, so the bursts below count steady-state round trips only.
            warm = httpx.post(
                f"{servers[0].url}/meter/warm-up/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                timeout=20,
            )
            assert warm.status_code == 200
            yield url, servers
        finally:
            for server in servers:
                server.stop()


async def burst(url: str, servers: list[Service], path: str, body: dict, total: int):
    """`total` requests, CONCURRENCY at a time, round robin over the replicas."""
    targets = itertools.cycle([f"{s.url}{path}" for s in servers])
    queue = [next(targets) for _ in range(total)]
    clock = redis.asyncio.Redis.from_url(url)
    results: list[tuple[int, int]] = []  # (status, tokens used)

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            target = queue.pop()
            async with session.post(target, json=body) as response:
                text = await response.read()
                results.append((response.status, _usage(text) if response.status == 200 else 0))

    try:
        await clock.config_resetstat()
        start = await clock.time()
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONCURRENCY)
        ) as session:
            await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        end = await clock.time()
        stats = await clock.info("commandstats")
    finally:
        await clock.aclose()
    elapsed = (end[0] - start[0]) + (end[1] - start[1]) / 1e6
    # One EVALSHA per request, admitted or refused; a second only for a token settlement that
    # changes something, which an exact estimate never needs.
    calls = stats.get("cmdstat_evalsha", {}).get("calls", 0)
    assert calls == len(results)
    return results, elapsed


def _usage(body: bytes) -> int:
    if body.startswith(b"{"):
        return int(json.loads(body)["usage"]["total_tokens"])
    for line in body.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage":{' in line:
            return int(json.loads(line[6:])["usage"]["total_tokens"])
    raise AssertionError("a stream without its usage event")


async def test_requests_admitted_across_three_replicas(replicas, tmp_path: Path):
    url, servers = replicas
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
    results, elapsed = await burst(
        url, servers, "/meter/requests/v1/chat/completions", body, 4 * REQUESTS_PER_MINUTE
    )
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 429}
    admitted = statuses.count(200)
    allowance = REQUESTS_PER_MINUTE + elapsed * REQUESTS_PER_MINUTE / 60
    print(f"requests: {admitted} admitted, allowance {allowance:.1f} over {elapsed:.2f} s")
    assert abs(admitted - allowance) <= 0.01 * REQUESTS_PER_MINUTE


async def test_stream_tokens_admitted_across_three_replicas(replicas):
    url, servers = replicas
    body = {
        "model": f"chunks-{COMPLETION}",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": COMPLETION,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    offered = 4 * TOKENS_PER_MINUTE // (PROMPT_TOKENS + COMPLETION)
    results, elapsed = await burst(url, servers, "/meter/tokens/v1/chat/completions", body, offered)
    assert {status for status, _ in results} <= {200, 429}
    used = sum(tokens for _, tokens in results)
    allowance = TOKENS_PER_MINUTE + elapsed * TOKENS_PER_MINUTE / 60
    print(
        f"tokens: {used} used by admitted streams, allowance {allowance:.0f} over {elapsed:.2f} s"
    )
    assert abs(used - allowance) <= 0.01 * TOKENS_PER_MINUTE
