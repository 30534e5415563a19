"""Routing by project API key: `/v1/...` with no project in the path, the body's model choosing
the deployment, and limits charged once per client request however many attempts it took."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Service, start_standin
from .leaks import LEAKS
from .routing_support import routing_manifest, start_routed_fd2, target

KEY_ONE = "fd2_routing-key-one-3c9f0a"
KEY_NARROW = "fd2_routing-key-narrow-77b1"
KEY_OTHER = "fd2_routing-key-other-a41e"
KEY_PLAIN = "fd2_routing-key-plain-0d3c"
for _key in (KEY_ONE, KEY_NARROW, KEY_OTHER, KEY_PLAIN):
    LEAKS.add_secret(_key)

MESSAGES = [{"role": "user", "content": "hi"}]


def _hash(key: str) -> str:
    return hmac.new(b"", key.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("key-routing")
    upstream = start_standin("standin-keys", root)
    address = upstream.address
    manifests = root / "manifests"
    manifests.mkdir()
    own = routing_manifest(
        {
            "team-chat": {"targets": [target(address, "gpt-4o-mini")]},
            "team-flaky": {
                "strategy": "priority",
                "targets": [
                    target(address, "error-500-plain", name="bad", priority=0),
                    target(address, "gpt-4o-mini", name="good", priority=1),
                ],
            },
        },
        routing={"breaker": {"consecutive_failures": 100}},
        auth={"mode": "api_key"},
        module_extra={"limits": {"requests_per_minute": 4}},
        api_keys=[
            {"id": "one", "hash": _hash(KEY_ONE)},
            {"id": "narrow", "hash": _hash(KEY_NARROW), "models": ["team-chat"]},
        ],
    )
    other = routing_manifest(
        {"other-chat": {"targets": [target(address, "gpt-4o")]}},
        project="other",
        auth={"mode": "api_key"},
        api_keys=[{"id": "other", "hash": _hash(KEY_OTHER)}],
    )
    plain = {
        "project_id": "plainproj",
        "version": "1",
        "environment": "development",
        "environments": {"development": {"secrets": {"up_key": "env:BILLING_UPSTREAM_API_KEY"}}},
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": "assistant",
                "config": {
                    "model_name": "plain-model",
                    "endpoint_url": f"http://{address}/v1/chat/completions",
                },
            }
        ],
        "metadata": {
            "fd2": {
                "api_keys": [{"id": "plain", "hash": _hash(KEY_PLAIN)}],
                "modules": {"assistant": {"auth": {"mode": "api_key"}}},
            }
        },
    }
    (manifests / "plain.json").write_text(json.dumps(plain))
    (manifests / "routing.json").write_text(json.dumps(own))
    (manifests / "other.json").write_text(json.dumps(other))
    service = start_routed_fd2(manifests, root, name="fd2-keys")
    yield service
    service.stop()
    upstream.stop()


def _post(gateway: Service, key: str | None, model: str, **extra: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, **extra},
        headers=headers,
        timeout=10,
    )


def _models(gateway: Service, key: str) -> set[str]:
    response = httpx.get(
        f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {entry["id"] for entry in response.json()["data"]}


def test_the_key_names_the_project_and_the_model_the_deployment(gateway: Service) -> None:
    response = _post(gateway, KEY_OTHER, "other-chat")
    assert response.status_code == 200, response.text
    seen = json.loads(response.json()["choices"][0]["message"]["content"])
    assert seen["model"] == "gpt-4o"
    assert response.headers["x-fd2-deployment"] == "other-chat#0"


def test_no_key_is_401_and_an_unknown_key_too(gateway: Service) -> None:
    missing = _post(gateway, None, "team-chat")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert _post(gateway, "fd2_not-a-key", "team-chat").status_code == 401


def test_a_key_reaches_only_its_own_project(gateway: Service) -> None:
    response = _post(gateway, KEY_OTHER, "team-chat")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert "other-chat" not in json.dumps(error)


def test_models_lists_what_the_key_may_use(gateway: Service) -> None:
    assert _models(gateway, KEY_ONE) == {"team-chat", "team-flaky"}
    assert _models(gateway, KEY_NARROW) == {"team-chat"}
    assert _models(gateway, KEY_OTHER) == {"other-chat"}
    # A model the key may not use is the same 404 as one that does not exist.
    refused = _post(gateway, KEY_NARROW, "team-flaky")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "model_not_found"


def test_limits_are_charged_once_per_client_request(gateway: Service) -> None:
    # Each request takes two upstream attempts (a 500, then the good target); the module allows
    # 4 requests a minute: 4 are served, the 5th refused, whatever the attempts.
    statuses = []
    for _ in range(5):
        response = _post(gateway, KEY_ONE, "team-flaky")
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.headers["x-fd2-attempts"] == "2"
    assert statuses == [200, 200, 200, 200, 429]


def test_a_module_without_deployments_is_reached_by_its_model_name(gateway: Service) -> None:
    response = _post(gateway, KEY_PLAIN, "plain-model")
    assert response.status_code == 200, response.text
    assert _models(gateway, KEY_PLAIN) == {"plain-model"}
    assert _post(gateway, KEY_PLAIN, "gpt-4o").status_code == 404
