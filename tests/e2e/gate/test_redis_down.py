"""fd2 configured with a Redis that is not there: the configured policy applies, logged once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ..conftest import Service, free_port
from ..support import assert_openai_error
from .conftest import start_auth_fd2


def manifest(upstream: str) -> dict:
    return {
        "project_id": "lonely",
        "environment": "development",
        "environments": {"development": {"limits": {"requests_per_minute": 3}}},
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": "chat",
                "auth": {"mode": "none"},
                "config": {"endpoint_url": f"http://{upstream}/v1/chat/completions"},
            }
        ],
    }


def statuses(server: Service, n: int) -> list[httpx.Response]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{server.url}/lonely/chat/v1/chat/completions"
    return [httpx.post(url, json=body, timeout=20) for _ in range(n)]


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_redis_unreachable(tmp_path: Path, standin: Service, policy: str):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "lonely.json").write_text(json.dumps(manifest(standin.address)))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    server = start_auth_fd2(
        manifests,
        tmp_path,
        "--redis-url",
        dead,
        "--limits-on-redis-failure",
        policy,
        name=f"fd2-redis-{policy}",
    )
    try:
        answers = statuses(server, 5)
    finally:
        server.stop()
    if policy == "open":
        # the same limits, decided by this process alone
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    else:
        assert {a.status_code for a in answers} == {503}
        assert assert_openai_error(answers[0].content)["code"] == "rate_limiter_down"
    log = server.output()
    assert log.count("Redis unreachable") == 1, log
