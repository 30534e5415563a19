"""Deployments across providers: an OpenAI-compatible target failing over to an Anthropic one
(the provider seam translates the call and the answer, plain and streamed)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Service, free_port, start_service, start_standin
from .routing_support import KEY, routing_manifest, start_routed_fd2, target
from .support import REPO

ANTHROPIC = REPO / "tests" / "standins" / "anthropic_upstream.py"
MESSAGES = [{"role": "user", "content": "hi"}]


def _claude(address: str, model: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": f"http://{address}",
        "provider": "anthropic",
        "model": model,
        "name": name,
        "api_key": KEY,
        **extra,
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("cross-provider")
    openai_like = start_standin("standin-cross", root)
    port = free_port()
    anthropic = start_service(
        "anthropic-cross",
        [sys.executable, str(ANTHROPIC), "--host", "127.0.0.1", "--port", str(port)],
        port=port,
        ready_path="/_standin/requests",
        log_dir=root,
        deadline_s=15,
    )
    manifests = root / "manifests"
    manifests.mkdir()
    deployments = {
        "cross": {
            "strategy": "priority",
            "targets": [
                target(openai_like.address, "error-500-plain", name="openai-bad", priority=0),
                _claude(anthropic.address, "claude-test", "claude", priority=1),
            ],
        },
        "claude-limited": {"targets": [_claude(anthropic.address, "error-429", "limited")]},
    }
    (manifests / "routing.json").write_text(json.dumps(routing_manifest(deployments)))
    service = start_routed_fd2(manifests, root, name="fd2-cross")
    yield service
    service.stop()
    anthropic.stop()
    openai_like.stop()


def _post(gateway: Service, model: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/routing/chat/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, **extra},
        timeout=10,
    )


def test_a_failing_openai_target_falls_over_to_anthropic(gateway: Service) -> None:
    response = _post(gateway, "cross")
    assert response.status_code == 200, response.text
    assert response.headers["x-fd2-deployment"] == "claude"
    assert response.headers["x-fd2-attempts"] == "2"
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "You said: hi"
    assert answer["usage"]["prompt_tokens"] > 0


def test_the_stream_falls_over_too_and_is_translated(gateway: Service) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/routing/chat/v1/chat/completions",
        json={"model": "cross", "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-fd2-deployment"] == "claude"
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert events.count("[DONE]") == 1
    text = "".join(
        choice["delta"].get("content") or ""
        for event in events[:-1]
        for choice in json.loads(event)["choices"]
    )
    assert text == "You said: hi"


def test_a_provider_error_is_mapped_with_its_retry_after(gateway: Service) -> None:
    response = _post(gateway, "claude-limited")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["type"]
