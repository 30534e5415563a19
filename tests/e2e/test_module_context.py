"""The module context end to end: a module of a test package (loaded with --module-packages)
calls its `chat` dependency in process, counts in the worker's shared Redis, registers a metric
and runs supervised background tasks — fd2, the OpenAI stand-in and redis-server as real
processes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Service, fd2_argv, fd2_env, free_port, start_service
from .leaks import LEAKS
from .redis_server import RedisServer
from .support import REPO, assert_no_leak, assert_openai_error, wait_until

PACKAGE_DIR = REPO / "tests" / "e2e" / "context_modules"
ADMIN_TOKEN = "context-admin-token-5c1e"
LEAKS.add_secret(ADMIN_TOKEN)


def manifest(upstream: str) -> dict[str, Any]:
    return {
        "project_id": "ctx",
        "environments": {
            "common": {"secrets": {"upstream_api_key": "env:ACME_UPSTREAM_API_KEY"}},
            "development": {"urls": {"llm": f"http://{upstream}/v1"}},
        },
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": "chat",
                "auth": {"mode": "none"},
                "config": {
                    "model_name": "gpt-4o-mini",
                    "endpoint_url": "${environments.${environment}.urls.llm}/chat/completions",
                    "api_key": "${environments.${environment}.secrets.upstream_api_key}",
                    "system_prompt": "Answer briefly.",
                },
            },
            *(
                {
                    "module_type": "ask",
                    "name": name,
                    "auth": {"mode": "none"},
                    "dependencies": ["chat"],
                    "runtime": {"type": "python", "implementation": "ctxprobe.AskModule"},
                    "config": {"health_path": path},
                }
                for name, path in (("ask", "/v1/models"), ("sick", "/v1/nosuch"))
            ),
        ],
    }


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway(tmp_path: Path, standin: Service, redis: RedisServer) -> Iterator[Service]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "ctx.json").write_text(json.dumps(manifest(standin.address)))
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    env = fd2_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(PACKAGE_DIR), env.get("PYTHONPATH"))))
    env["CTX_ADMIN_TOKEN"] = ADMIN_TOKEN
    argv = fd2_argv(
        "serve",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--manifests", str(manifests), "--default-env", "development"),
        *("--module-packages", "ctxprobe", "--redis-url", redis.url),
        *("--admin-token-ref", "env:CTX_ADMIN_TOKEN"),
    )
    service = start_service(
        "fd2-context", argv, port=port, ready_path="/healthz", log_dir=logs, env=env
    )
    yield service
    service.stop()


def test_a_module_calls_its_dependency_in_process(gateway: Service) -> None:
    response = httpx.post(
        f"{gateway.url}/ctx/ask/v1/ask",
        json={"question": "what is fd2?"},
        headers={"x-request-id": "ctx-req-1"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-answered-by"] == "chat, in process"
    assert response.headers["x-request-id"] == "ctx-req-1"
    seen = json.loads(response.json()["choices"][0]["message"]["content"])
    # The chat module's own work was done: its system prompt, its upstream key, and the
    # client's request id carried through the in-process call to the upstream.
    assert seen["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "what is fd2?"},
    ]
    assert seen["authorization"] == "Bearer test-acme-key"
    assert seen["x_request_id"] == "ctx-req-1"
    assert_no_leak(response.content)


def test_a_streamed_answer_is_relayed_chunk_by_chunk(gateway: Service) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/ctx/ask/v1/ask",
        json={"question": "count", "stream": True, "model": "chunks-5-gap-20"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    contents = [
        choice["delta"].get("content")
        for event in events[:-1]
        for choice in json.loads(event[len("data: ") :])["choices"]
    ]
    assert [c for c in contents if c] == ["1;", "2;", "3;", "4;", "5;"]


def test_errors_of_the_called_module_reach_the_client_as_it_shaped_them(gateway: Service) -> None:
    response = httpx.post(
        f"{gateway.url}/ctx/ask/v1/ask",
        json={"question": "fail", "model": "error-429"},
        timeout=30,
    )
    assert response.status_code == 429
    assert_openai_error(response.content)


def test_the_shared_redis_metrics_and_supervised_tasks(gateway: Service) -> None:
    counts = [
        httpx.post(f"{gateway.url}/ctx/ask/v1/count", timeout=10).json()["count"] for _ in range(3)
    ]
    assert counts == [1, 2, 3]  # one Redis, the one --redis-url names
    httpx.post(f"{gateway.url}/ctx/ask/v1/ask", json={"question": "q"}, timeout=30)
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    asked = {
        sample.labels["stream"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "fd2_ask_questions_total"
        and sample.labels["project"] == "ctx"
        and sample.labels["module"] == "ask"
        and sample.labels["environment"] == "development"
    }
    assert asked == {"false": 1.0}

    # The task that failed on its first run was started again; the ticking one keeps ticking.
    def settled() -> dict[str, int] | None:
        state = httpx.get(f"{gateway.url}/ctx/ask/v1/state", timeout=10).json()
        return state if state["crashy_runs"] == 2 and state["beats"] >= 3 else None

    state = wait_until(settled, timeout=10, interval=0.1)
    assert state["crashy_runs"] == 2
    routes = httpx.get(
        f"{gateway.url}/admin/routes",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    ).json()
    assert {
        "task": "module: ctx/ask [development]: crashes once",
        "restarts": 1,
        "last_error": "RuntimeError",
    } in routes["background_tasks"]
    assert "background task 'module: ctx/ask [development]: crashes once' failed" in (
        gateway.output()
    )
    assert "the first run fails on purpose" not in gateway.output()


def test_module_health_is_asked_in_the_background_and_reported(gateway: Service) -> None:
    def ready() -> dict[str, Any] | None:
        response = httpx.get(f"{gateway.url}/readyz", timeout=10)
        assert response.status_code == 200  # an unhealthy module does not take the replica out
        body = dict(response.json())
        return body if body.get("unhealthy_modules") == 1 else None

    assert wait_until(ready, timeout=15, interval=0.2) == {
        "status": "ready",
        "unhealthy_modules": 1,
    }
    routes = httpx.get(
        f"{gateway.url}/admin/routes",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    ).json()
    (ctx,) = routes["projects"]
    health = {
        module["module"]: module["environments"][0].get("health") for module in ctx["modules"]
    }
    assert health == {
        "ask": {"ok": True, "detail": ""},
        "chat": {"ok": True, "detail": ""},
        "sick": {"ok": False, "detail": "chat answered 404"},
    }
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'fd2_module_healthy{environment="development",module="sick",project="ctx"} 0.0' in text
