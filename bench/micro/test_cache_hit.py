"""What a response cache hit costs (issue 15.4: at most one Redis round trip plus 100 µs of CPU).

The cache step (`fd2.pipeline.cache.ResponseCache`) answering from a real redis-server on
loopback, for a small chat request and a 1 KB stored answer, then for a streamed answer of 40
events: the Redis commands a hit sends (INFO commandstats: exactly one GET), the wall time and
the CPU time per hit (the step, redis-py's client side of the GET and the replay, everything but
the server). A second case swaps the store for an in-memory one: the step's own CPU without the
Redis client. Run with `make bench-micro`; the figures are printed and kept in docs/cache.md."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from fd2.limits.redis_client import make_redis
from fd2.module import Handler
from fd2.pipeline.cache import ResponseCache
from fd2.response_cache.flight import Flights
from fd2.response_cache.settings import CacheSettings
from fd2.response_cache.store import CacheStore
from fd2.serving.request import Request
from fd2.types import Message
from fd2_inference import InferenceModule

CPU_LIMIT_US = 100.0
HITS = 3000
BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in French."}]}
)
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Bonjour ! " * 80},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 160, "total_tokens": 172},
    }
)
EVENTS = [
    b'data: {"choices":[{"index":0,"delta":{"content":"tok %d"}}]}\n\n' % i for i in range(40)
]


class _Meter:
    async def model(self, request: Request) -> str | None:
        model = (await request.json_object()).get("model")
        return model if isinstance(model, str) else None

    async def estimate(self, request: Request) -> Any:
        raise NotImplementedError


class _MemoryStore(CacheStore):
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        self.values[key] = value

    async def lock(self, key: str, lock_s: float) -> str | None:
        return "t"

    async def unlock(self, key: str, token: str) -> None:
        return None


def _request(body: bytes) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    sent = False

    async def receive() -> Message:
        nonlocal sent
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(
        scope, receive, request_id="r", project="bench", module="chat", environment="dev",
        path="/v1/chat/completions", content_length=len(body), max_body=1 << 20,
    )  # fmt: skip


async def _discard(message: Message) -> None:
    return None


async def _never(request: Request, send: Any) -> None:
    raise AssertionError("a hit must not call upstream")


def _body(streamed: bool) -> bytes:
    return orjson.dumps({**orjson.loads(BODY), "stream": True}) if streamed else BODY


def _upstream(streamed: bool) -> Handler:
    async def answer(request: Request, send: Any) -> None:
        kind = b"text/event-stream" if streamed else b"application/json"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind)]})  # fmt: skip
        chunks = [*EVENTS, b"data: [DONE]\n\n"] if streamed else [ANSWER]
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return answer


def _step(store: CacheStore) -> ResponseCache:
    return ResponseCache(
        settings=CacheSettings(),
        store=store,
        flights=Flights(),
        project="bench",
        module="chat",
        environment="dev",
        ignores=InferenceModule.cache_key_ignores,
        variant_fields=InferenceModule.cache_variant_fields,
        meter=_Meter(),
    )


async def _measure(step: ResponseCache, body: bytes, streamed: bool) -> tuple[float, float]:
    upstream = _upstream(streamed)
    await step(_request(body), _discard, upstream)  # the miss that stores the entry

    for _ in range(200):  # warm-up
        await step(_request(body), _discard, _never)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(HITS):
        await step(_request(body), _discard, _never)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / HITS * 1e6, cpu / HITS * 1e6


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: run `make redis-server`", pytrace=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        ["timeout", "300", server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)


async def _gets(client: Any) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


@pytest.mark.parametrize("streamed", [False, True], ids=["json-1KB", "sse-40-events"])
def test_a_hit_costs_one_redis_round_trip(redis_url: str, streamed: bool) -> None:
    body = _body(streamed)

    async def run() -> tuple[float, float, int, float, float]:
        client = make_redis(redis_url, timeout=1.0)
        try:
            step = _step(CacheStore(client))
            wall, cpu = await _measure(step, body, streamed)
            before = await _gets(client)
            for _ in range(100):
                await step(_request(body), _discard, _never)
            gets = await _gets(client) - before
            began, began_cpu = time.perf_counter(), time.process_time()
            for _ in range(HITS):
                await client.get("fd2:absent")
            get_wall = (time.perf_counter() - began) / HITS * 1e6
            get_cpu = (time.process_time() - began_cpu) / HITS * 1e6
            return wall, cpu, gets, get_wall, get_cpu
        finally:
            await client.aclose()

    wall, cpu, gets, get_wall, get_cpu = asyncio.run(run())
    assert gets == 100  # one GET per hit, nothing else
    print(
        f"\ncache hit ({'sse' if streamed else 'json'}): wall {wall:.1f} µs, CPU {cpu:.1f} µs "
        f"per hit; a redis-py GET alone: wall {get_wall:.1f} µs, CPU {get_cpu:.1f} µs; "
        f"the hit beyond its GET: CPU {cpu - get_cpu:.1f} µs"
    )
    assert cpu - get_cpu < CPU_LIMIT_US


@pytest.mark.parametrize("streamed", [False, True], ids=["json-1KB", "sse-40-events"])
def test_the_steps_own_cpu(streamed: bool) -> None:
    _, cpu = asyncio.run(_measure(_step(_MemoryStore()), _body(streamed), streamed))
    print(f"\ncache hit without Redis ({'sse' if streamed else 'json'}): CPU {cpu:.1f} µs per hit")
    assert cpu < CPU_LIMIT_US
