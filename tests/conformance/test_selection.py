"""Provider selection as a deployment sees it: an unknown provider makes its module's routes
answer 503 (and nothing else), a translated provider serves no OpenAI-only endpoint."""

from __future__ import annotations

import httpx

from e2e.conftest import Service

from .conftest import PROJECT, UNKNOWN_PROVIDER_MODULE, Replay


def test_unknown_provider_is_a_503_for_its_routes(
    conformance_fd2: Service, replayer: Replay
) -> None:
    replayer.load(None)
    url = f"{conformance_fd2.url}/{PROJECT}/{UNKNOWN_PROVIDER_MODULE}/v1/chat/completions"
    response = httpx.post(url, json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "module_unavailable"
    assert response.headers["x-request-id"]
    assert replayer.result()["requests"] == 0


def test_translated_provider_serves_no_openai_only_endpoint(
    conformance_fd2: Service, replayer: Replay
) -> None:
    replayer.load(None)
    response = httpx.get(f"{conformance_fd2.url}/{PROJECT}/azure/v1/models")
    assert response.status_code == 404
    assert "azure" in response.json()["error"]["message"]
    assert replayer.result()["requests"] == 0
