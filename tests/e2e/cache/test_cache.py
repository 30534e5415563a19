"""The response cache with real processes: fd2 under Granian (two workers) with a real
redis-server, the OpenAI stand-in counting the calls that reach it, the official SDK."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ..conftest import Service, StandinStats, fd2_argv, fd2_env, free_port, start_service
from ..leaks import LEAKS
from ..redis_server import RedisServer, running_redis

ADMIN_TOKEN = "cache-admin-token-e2e-5531"
LEAKS.add_secret(ADMIN_TOKEN)


def manifest(upstream: str, module: str, cache: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "auth": {"mode": "none"},
        "project": "cachep",
        "module": module,
        "module_type": "inference_openai",
        "runtime": {"type": "python:3.11", "implementation": "fd2_inference.InferenceModule"},
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": [
            {"name": "api_key", "source": "env:BILLING_UPSTREAM_API_KEY", "required": True}
        ],
        "default_environment": "dev",
        "cache": cache,
    }


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, standin: Service
) -> Iterator[tuple[Service, Service]]:
    """Two fd2 replicas (two workers, one worker) sharing one redis-server and the manifests."""
    root = tmp_path_factory.mktemp("cache")
    manifests = root / "manifests"
    manifests.mkdir()
    for name, cache in (("chat", {"ttl_s": 60}), ("small", {"max_entry_bytes": 200})):
        text = json.dumps(manifest(standin.address, name, cache))
        (manifests / f"{name}.module.json").write_text(text)
    limits = {"requests_per_minute": 3, "tokens_per_minute": 600}
    limited = manifest(standin.address, "limited", {}, limits=limits)
    (manifests / "limited.module.json").write_text(json.dumps(limited))
    services: list[Service] = []
    with running_redis(root) as redis_url:
        try:
            for name, workers in (("fd2-cache", "2"), ("fd2-cache-b", "1")):
                port = free_port()
                env = fd2_env()
                env["FD2_E2E_ADMIN_TOKEN"] = ADMIN_TOKEN
                argv = fd2_argv(
                    "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--manifests", str(manifests), "--default-env", "development",
                    "--workers", workers, "--redis-url", redis_url, "--redis-timeout", "0.5",
                    "--admin-token-ref", "env:FD2_E2E_ADMIN_TOKEN",
                )  # fmt: skip
                services.append(
                    start_service(
                        name, argv, port=port, ready_path="/healthz", log_dir=root, env=env
                    )
                )
            yield services[0], services[1]
        finally:
            for service in services:
                service.stop()


@pytest.fixture(scope="module")
def cached(replicas: tuple[Service, Service]) -> Service:
    return replicas[0]


@pytest.fixture
def sdk(cached: Service) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=f"{cached.url}/cachep/chat/v1", api_key="unused", max_retries=0, timeout=30
    )
    yield client
    client.close()


def prompt() -> list[Any]:
    return [{"role": "user", "content": f"cache test {uuid.uuid4()}"}]


def test_a_repeated_request_is_a_hit_with_the_same_answer(sdk, standin_stats: StandinStats):
    standin_stats.settle()
    messages = prompt()
    first = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    second = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
    assert first.headers["x-fd2-cache"] == "miss"
    assert second.headers["x-fd2-cache"] == "hit"
    assert second.parse().model_dump() == first.parse().model_dump()
    assert standin_stats.get()["started"] == 1
    # `user` does not change the answer (Module.cache_key_ignores): still a hit.
    third = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, user="someone-else"
    )
    assert third.headers["x-fd2-cache"] == "hit"
    # Another model is another entry.
    other = sdk.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    assert other.headers["x-fd2-cache"] == "miss"
    assert standin_stats.get()["started"] == 2


def raw_stream(cached: Service, body: dict[str, Any], **headers: str) -> tuple[str, list[bytes]]:
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", f"{cached.url}/cachep/chat/v1/chat/completions", json=body, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.headers["x-fd2-cache"], list(response.iter_raw())


def test_a_streamed_answer_is_replayed_as_the_same_events(
    cached: Service, sdk, standin_stats: StandinStats
):
    standin_stats.settle()
    body = {"model": "gpt-4o-mini", "messages": prompt(), "stream": True}
    state, first = raw_stream(cached, body)
    assert state == "miss"
    state, second = raw_stream(cached, body)
    assert state == "hit"
    assert b"".join(second) == b"".join(first)
    assert b"".join(second).endswith(b"data: [DONE]\n\n")
    # The SDK reads the replay like any stream; the plain request is another variant.
    chunks = list(
        sdk.chat.completions.create(model="gpt-4o-mini", messages=body["messages"], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "1;2;3;4;5;6;7;8;"
    )
    plain = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=body["messages"]
    )
    assert plain.headers["x-fd2-cache"] == "miss"
    assert standin_stats.get()["started"] == 2


def test_no_cache_refreshes_and_no_store_bypasses(cached: Service, sdk, standin_stats):
    standin_stats.settle()
    messages = prompt()
    create = sdk.chat.completions.with_raw_response.create
    skipped = create(
        model="gpt-4o-mini", messages=messages, extra_headers={"Cache-Control": "no-store"}
    )
    assert skipped.headers["x-fd2-cache"] == "bypass"
    assert create(model="gpt-4o-mini", messages=messages).headers["x-fd2-cache"] == "miss"
    fresh = create(
        model="gpt-4o-mini", messages=messages, extra_headers={"Cache-Control": "no-cache"}
    )
    assert fresh.headers["x-fd2-cache"] == "miss"
    assert standin_stats.get()["started"] == 3
    # The refreshed answer is the one stored now.
    again = create(model="gpt-4o-mini", messages=messages)
    assert again.headers["x-fd2-cache"] == "hit"
    assert again.parse().id == fresh.parse().id


def test_a_request_ttl_header_bounds_the_entry(sdk, standin_stats):
    standin_stats.settle()
    messages = prompt()
    create = sdk.chat.completions.with_raw_response.create
    ttl = {"x-fd2-cache-ttl": "1"}
    assert (
        create(model="gpt-4o-mini", messages=messages, extra_headers=ttl).headers["x-fd2-cache"]
        == "miss"
    )
    assert create(model="gpt-4o-mini", messages=messages).headers["x-fd2-cache"] == "hit"
    time.sleep(1.3)
    assert create(model="gpt-4o-mini", messages=messages).headers["x-fd2-cache"] == "miss"
    with pytest.raises(openai.BadRequestError) as refused:
        create(model="gpt-4o-mini", messages=messages, extra_headers={"x-fd2-cache-ttl": "x"})
    assert refused.value.status_code == 400


def test_errors_and_oversized_answers_are_never_stored(cached: Service, standin_stats):
    standin_stats.settle()
    body = {"model": "error-400", "messages": prompt()}
    url = f"{cached.url}/cachep/chat/v1/chat/completions"
    with httpx.Client(timeout=30) as client:
        for _ in range(2):
            answer = client.post(url, json=body)
            assert answer.status_code == 400
            assert answer.headers["x-fd2-cache"] == "miss"
        # A stream the upstream cuts short is not stored either.
        cut = {"model": "stream-break", "messages": prompt(), "stream": True}
        for _ in range(2):
            with client.stream("POST", url, json=cut) as response:
                assert response.headers["x-fd2-cache"] == "miss"
                with contextlib.suppress(httpx.HTTPError):  # fd2 ends it as the upstream did
                    assert b"[DONE]" not in response.read()
        small = f"{cached.url}/cachep/small/v1/chat/completions"
        plain = {"model": "gpt-4o-mini", "messages": prompt()}
        for _ in range(2):
            answer = client.post(small, json=plain)
            assert answer.status_code == 200
            assert answer.headers["x-fd2-cache"] == "miss"
    assert standin_stats.get()["started"] == 6


def test_concurrent_identical_misses_make_one_upstream_call(replicas, standin_stats):
    """Ten identical requests at once, spread over two replicas (three workers): one upstream
    call (single flight in a worker, the Redis lock across workers and replicas)."""
    standin_stats.settle()
    body = {"model": "slow-400", "messages": prompt()}
    urls = [f"{r.url}/cachep/chat/v1/chat/completions" for r in replicas]
    results: list[tuple[int, str, str]] = []
    lock = threading.Lock()

    def call(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            answer = client.post(urls[index % 2], json=body)
        with lock:
            results.append((answer.status_code, answer.headers["x-fd2-cache"], answer.text))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _, _ in results] == [200] * 10
    assert sorted(state for _, state, _ in results) == ["hit"] * 9 + ["miss"]
    assert len({text for _, _, text in results}) == 1
    assert standin_stats.get()["started"] == 1


def test_delete_by_pattern_needs_the_admin_token(cached: Service, sdk, standin_stats):
    messages = prompt()
    create = sdk.chat.completions.with_raw_response.create
    create(model="gpt-4o-mini", messages=messages)
    assert create(model="gpt-4o-mini", messages=messages).headers["x-fd2-cache"] == "hit"
    with httpx.Client(base_url=cached.url, timeout=10) as client:
        refused = client.delete("/v1/cache/cachep")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_admin_token"
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        wide = client.delete("/v1/cache/*", headers=auth)
        assert wide.status_code == 400
        assert wide.json()["error"]["param"] == "pattern"
        deleted = client.delete("/v1/cache/cachep/chat/development/gpt-4o-mini", headers=auth)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["deleted"] >= 1
        assert create(model="gpt-4o-mini", messages=messages).headers["x-fd2-cache"] == "miss"
        deleted = client.delete("/admin/cache/cachep/*", headers=auth)
        assert deleted.json()["deleted"] >= 1
        metrics = client.get("/metrics").text
    hits = [
        line
        for line in metrics.splitlines()
        if line.startswith("fd2_cache_lookups_total") and 'result="hit"' in line
    ]
    assert hits and float(hits[0].rsplit(" ", 1)[1]) >= 1


def test_a_hit_counts_as_a_request_but_charges_no_tokens(cached: Service) -> None:
    body = {"model": "gpt-4o-mini", "messages": prompt(), "max_tokens": 40}
    url = f"{cached.url}/cachep/limited/v1/chat/completions"
    with httpx.Client(timeout=30) as client:
        answers = [client.post(url, json=body) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers.get("x-fd2-cache") for a in answers[:3]] == ["miss", "hit", "hit"]
    remaining = [int(a.headers["x-ratelimit-remaining-requests"]) for a in answers[:3]]
    assert remaining == [2, 1, 0]
    tokens = [int(a.headers["x-ratelimit-remaining-tokens"]) for a in answers[:3]]
    # Each hit reserved the estimate and got all of it back: the second hit sees what the first
    # saw (plus what refilled meanwhile, 10 tokens a second); the miss was charged its usage.
    assert 0 <= tokens[2] - tokens[1] <= 3
    assert tokens[0] > tokens[1]


def test_without_redis_requests_are_served_uncached(
    tmp_path: Path, standin: Service, standin_stats: StandinStats
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    raw = manifest(standin.address, "chat", {"ttl_s": 60})
    (manifests / "chat.module.json").write_text(json.dumps(raw))
    server = RedisServer(tmp_path)
    server.start()
    port = free_port()
    argv = fd2_argv(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--manifests", str(manifests),
        "--default-env", "development", "--redis-url", server.url, "--redis-timeout", "0.2",
    )  # fmt: skip
    service = start_service(
        "fd2-cache-outage", argv, port=port, ready_path="/healthz", log_dir=tmp_path,
        env=fd2_env(),
    )  # fmt: skip
    try:
        standin_stats.settle()
        body = {"model": "gpt-4o-mini", "messages": prompt()}
        url = f"{service.url}/cachep/chat/v1/chat/completions"
        with httpx.Client(timeout=30) as client:
            states = [client.post(url, json=body).headers["x-fd2-cache"] for _ in range(2)]
            assert states == ["miss", "hit"]
            server.stop()
            for _ in range(3):
                answer = client.post(url, json=body)
                assert answer.status_code == 200
                assert answer.headers["x-fd2-cache"] == "miss"
        assert standin_stats.get()["started"] == 4
    finally:
        service.stop()
        server.stop()
    log = service.stderr_path.read_text()
    assert log.count("response cache: Redis read failed") == 1, log[-3000:]
