"""Independent review of the response cache (issue 15, point 4) from a hostile caller's side,
over real processes (fd2 under Granian, a redis-server, the OpenAI stand-in): authentication and
authorisation run before a hit, `scope: caller` keeps callers apart, projects never share
entries, and `DELETE /v1/cache/{pattern}` never reaches beyond the project it names."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from ..conftest import Service, fd2_argv, fd2_env, free_port, start_service
from ..leaks import LEAKS
from ..redis_server import running_redis
from ..support import assert_openai_error

ADMIN = "verify15-cache-admin-token-7781"
PEPPER = "verify15-cache-pepper"
KEY_A = "fd2_verify15-cache-key-a-000000000000000000"
KEY_B = "fd2_verify15-cache-key-b-000000000000000000"
KEY_MINI_ONLY = "fd2_verify15-cache-key-m-000000000000000000"
for secret in (ADMIN, PEPPER, KEY_A, KEY_B, KEY_MINI_ONLY):
    LEAKS.add_secret(secret)


def _record(key_id: str, key: str, **extra: Any) -> dict[str, Any]:
    digest = hmac.new(PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()
    return {"id": key_id, "hash": digest, **extra}


def _manifest(upstream: str, project: str, module: str, cache: dict[str, Any]) -> dict[str, Any]:
    return {
        "auth": {"mode": "api_key"},
        "project": project,
        "module": module,
        "module_type": "inference_openai",
        "runtime": {"type": "python:3.11", "implementation": "fd2_inference.InferenceModule"},
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": [
            {"name": "api_key", "source": "env:BILLING_UPSTREAM_API_KEY", "required": True}
        ],
        "default_environment": "dev",
        "cache": cache,
        "api_keys": [
            _record("key-a", KEY_A),
            _record("key-b", KEY_B),
            _record("key-mini", KEY_MINI_ONLY, models=["gpt-4o-mini"]),
        ],
    }


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, standin: Service
) -> Iterator[tuple[Service, str]]:
    root = tmp_path_factory.mktemp("verify15-cache")
    manifests = root / "manifests"
    manifests.mkdir()
    for project, module, cache in (
        ("vshared", "chat", {"ttl_s": 60}),
        ("vshared", "mine", {"ttl_s": 60, "scope": "caller"}),
        ("vother", "chat", {"ttl_s": 60}),
        ("vshared-x", "chat", {"ttl_s": 60}),
    ):
        raw = _manifest(standin.address, project, module, cache)
        (manifests / f"{project}-{module}.module.json").write_text(json.dumps(raw))
    with running_redis(root) as redis_url:
        port = free_port()
        env = fd2_env()
        env.update(V15_ADMIN=ADMIN, V15_PEPPER=PEPPER)
        argv = fd2_argv(
            "serve", "--host", "127.0.0.1", "--port", str(port),
            "--manifests", str(manifests), "--default-env", "development",
            "--redis-url", redis_url, "--admin-token-ref", "env:V15_ADMIN",
            "--api-key-pepper-ref", "env:V15_PEPPER",
        )  # fmt: skip
        service = start_service(
            "fd2-verify15-cache", argv, port=port, ready_path="/healthz", log_dir=root, env=env
        )
        try:
            yield service, redis_url
        finally:
            service.stop()


def _ask(service: Service, path: str, key: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{service.url}{path}", json=body, headers=headers, timeout=20)


def _body(model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": f"v15 {uuid.uuid4()}"}]}


CHAT = "/vshared/chat/v1/chat/completions"


def test_no_or_a_wrong_credential_never_gets_a_cached_answer(
    gateway: tuple[Service, str],
) -> None:
    service, _ = gateway
    body = _body()
    assert _ask(service, CHAT, KEY_A, body).headers["x-fd2-cache"] == "miss"
    assert _ask(service, CHAT, KEY_A, body).headers["x-fd2-cache"] == "hit"
    for key in (None, "fd2_not-a-key-000000000000000000000000", KEY_A + "x"):
        answer = _ask(service, CHAT, key, body)
        assert answer.status_code == 401, answer.text
        assert "x-fd2-cache" not in answer.headers
        assert_openai_error(answer.content, status=401)
        assert "choices" not in answer.text


def test_a_caller_not_allowed_the_model_is_refused_before_the_cache(
    gateway: tuple[Service, str],
) -> None:
    service, _ = gateway
    body = _body("gpt-4o")
    assert _ask(service, CHAT, KEY_A, body).status_code == 200
    assert _ask(service, CHAT, KEY_A, body).headers["x-fd2-cache"] == "hit"
    refused = _ask(service, CHAT, KEY_MINI_ONLY, body)
    assert refused.status_code == 403, refused.text
    assert "x-fd2-cache" not in refused.headers
    assert_openai_error(refused.content, status=403)


def test_scope_caller_keeps_each_callers_answers_to_itself(gateway: tuple[Service, str]) -> None:
    service, redis_url = gateway
    body = _body()
    path = "/vshared/mine/v1/chat/completions"
    assert _ask(service, path, KEY_A, body).headers["x-fd2-cache"] == "miss"
    assert _ask(service, path, KEY_A, body).headers["x-fd2-cache"] == "hit"
    assert _ask(service, path, KEY_B, body).headers["x-fd2-cache"] == "miss"
    assert _ask(service, path, KEY_B, body).headers["x-fd2-cache"] == "hit"
    # The key names hold neither the credential nor the key id in clear.
    connection = redis.Redis.from_url(redis_url)
    try:
        names = b" ".join(connection.scan_iter(match="fd2:cache:vshared:mine:*"))
    finally:
        connection.close()
    assert names.count(b"fd2:cache:") == 2
    for secret in (KEY_A, KEY_B):
        assert secret.encode() not in names


def test_another_project_never_gets_this_projects_entry(gateway: tuple[Service, str]) -> None:
    service, _ = gateway
    body = _body()
    assert _ask(service, CHAT, KEY_A, body).headers["x-fd2-cache"] == "miss"
    for project in ("vother", "vshared-x"):
        answer = _ask(service, f"/{project}/chat/v1/chat/completions", KEY_A, body)
        assert answer.headers["x-fd2-cache"] == "miss"


def _delete(service: Service, pattern: str, token: str | None = ADMIN) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    # A pattern is sent as it is, percent-escapes included: httpx would normalise `..`.
    url = f"{service.url}/v1/cache/{pattern}"
    return httpx.request("DELETE", url, headers=headers, timeout=20)


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "v*",
        "vshared*",
        "vshared?x",
        "[v]shared",
        "vshared:*",
        "vshared%3A*",
        "vshared%2A",
        "vshared\\*",
        "vshared/chat/*/*/../../vother",
        "vshared/chat:*",
        "vshared/chat/dev/gpt*:*:*",
        "%2A",
        "",
    ],
)
def test_a_pattern_cannot_reach_another_projects_entries(
    gateway: tuple[Service, str], pattern: str
) -> None:
    service, _ = gateway
    body = _body()
    for project in ("vother", "vshared-x"):
        path = f"/{project}/chat/v1/chat/completions"
        assert _ask(service, path, KEY_A, body).status_code == 200
    answer = _delete(service, pattern)
    assert answer.status_code in (200, 400, 404), answer.text
    if answer.status_code != 200:
        assert_openai_error(answer.content, status=answer.status_code)
    for project in ("vother", "vshared-x"):
        path = f"/{project}/chat/v1/chat/completions"
        assert _ask(service, path, KEY_A, body).headers["x-fd2-cache"] == "hit", pattern


def test_deleting_needs_the_admin_token(gateway: tuple[Service, str]) -> None:
    service, _ = gateway
    body = _body()
    assert _ask(service, CHAT, KEY_A, body).status_code == 200
    for token in (None, KEY_A, ADMIN + "x", ADMIN[:-1]):
        answer = _delete(service, "vshared", token)
        assert answer.status_code in (401, 403), answer.text
        assert_openai_error(answer.content, status=answer.status_code)
    assert _ask(service, CHAT, KEY_A, body).headers["x-fd2-cache"] == "hit"
    done = _delete(service, "vshared")
    assert done.status_code == 200 and done.json()["deleted"] >= 1
    assert _ask(service, CHAT, KEY_A, body).headers["x-fd2-cache"] == "miss"


def test_one_body_sent_to_two_endpoints_is_two_entries(gateway: tuple[Service, str]) -> None:
    """A body valid for two endpoints of one module (chat completions and Anthropic's messages
    both take `model`, `messages`, `max_tokens`) must not be answered from the other's entry."""
    service, _ = gateway
    body = {**_body(), "max_tokens": 16}
    chat = _ask(service, CHAT, KEY_A, body)
    assert chat.status_code == 200 and chat.headers["x-fd2-cache"] == "miss"
    for path in ("/vshared/chat/v1/messages", "/vshared/chat/v1/completions"):
        other = _ask(service, path, KEY_A, body)
        assert other.headers.get("x-fd2-cache") != "hit", (path, other.text[:300])
        assert other.content != chat.content
