"""Embeddings under hostile upstreams and clients, per provider with embeddings (issue 12,
verified): an answer that is not the documented shape (any member of a wrong type), an HTML
error quoting the key, one of Bedrock's per-input calls failing, inputs of unexpected types.
Every failure is a clean OpenAI error; the `openai` SDK's default base64 encoding survives."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from e2e.conftest import Service

from .conftest import Replay
from .scenarios import EMBEDDING_MODEL
from .verify12_support import (
    PROVIDERS,
    assert_clean_error,
    chat_url,
    member_paths,
    secrets_of,
    transcript,
    verify_fd2,  # noqa: F401  # the fixture
)

EMBEDDERS = [p for p in PROVIDERS if p != "anthropic"]
BODY = {"model": EMBEDDING_MODEL, "input": ["hello", "world"]}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0) as client:
        yield client


def _url(fd2: Service, provider: str) -> str:
    return chat_url(fd2, provider, "/v1/embeddings")


def _responses(loaded: dict[str, Any]) -> list[dict[str, Any]]:
    if "exchanges" in loaded:
        return [exchange["response"] for exchange in loaded["exchanges"]]
    return [loaded["response"]]


@pytest.mark.parametrize("provider", [p for p in EMBEDDERS if p not in ("openai", "azure")])
def test_embedding_answers_with_members_of_a_wrong_type(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    original = transcript(provider, "embeddings")
    answer = _responses(original)[0]["json"]
    refused = 0
    for path in member_paths(answer, list_items=2):
        for wrong in (None, "x", [], {"z": 1}, -1, True, 1e300, 10**30):
            loaded = copy.deepcopy(original)
            target = _responses(loaded)[0]["json"]
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = wrong
            replayer.load(loaded)
            for encoding in ("float", "base64"):
                response = http.post(
                    _url(verify_fd2, provider), json={**BODY, "encoding_format": encoding}
                )
                if response.status_code == 200:
                    data = response.json()["data"]
                    assert [item["index"] for item in data] == [0, 1], (path, wrong)
                    for item in data:
                        if encoding == "float":
                            assert all(isinstance(x, float | int) for x in item["embedding"]), (
                                path,
                                wrong,
                                item,
                            )
                            assert not any(isinstance(x, bool) for x in item["embedding"]), (
                                path,
                                wrong,
                            )
                        else:
                            assert isinstance(item["embedding"], str), (path, wrong)
                    continue
                refused += 1
                assert response.status_code == 502, (path, wrong, response.text[:200])
                assert_clean_error(response, 502)
                replayer.load(copy.deepcopy(loaded))
    assert refused


@pytest.mark.parametrize("provider", EMBEDDERS)
def test_an_html_error_quoting_the_key(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded = transcript(provider, "embeddings")
    html = f"<html>bad key {' '.join(secrets_of(provider))}</html>"
    for response in _responses(loaded)[-1:]:  # Bedrock: the second call of two fails
        response.clear()
        response.update({"status": 403, "headers": [["content-type", "text/html"]], "body": html})
    replayer.load(loaded)
    answer = http.post(_url(verify_fd2, provider), json=BODY)
    assert_clean_error(answer)
    if provider != "openai":
        assert answer.status_code == 403, answer.text


@pytest.mark.parametrize("provider", EMBEDDERS)
@pytest.mark.parametrize(
    "value",
    [7, None, [], [7, "x"], [[1, 2], "x"], {"a": 1}, [""], ["x"] * 5000, "\ud800"],
    ids=[
        "int",
        "null",
        "empty",
        "mixed",
        "tokens-and-text",
        "object",
        "blank",
        "many",
        "surrogate",
    ],
)
def test_embedding_inputs_of_unexpected_types(
    provider: str,
    value: Any,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    replayer.load(transcript(provider, "embeddings"))
    import json

    response = http.post(
        _url(verify_fd2, provider),
        content=json.dumps({"model": EMBEDDING_MODEL, "input": value}).encode(),
        headers={"content-type": "application/json"},
    )
    if response.status_code == 200:
        return
    assert response.status_code < 500 or response.status_code == 502, response.text[:300]
    assert_clean_error(response)
