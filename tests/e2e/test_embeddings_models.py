"""Embeddings (acme/embed and acme/chat) and the models list, through the SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from .conftest import Service


@pytest.fixture
def direct(standin: Service) -> Iterator[openai.OpenAI]:
    """The SDK talking to the stand-in itself, for the expected vectors."""
    with openai.OpenAI(
        base_url=f"{standin.url}/v1", api_key="direct", max_retries=0, timeout=15
    ) as sdk:
        yield sdk


@pytest.mark.parametrize("project_module", ["acme/embed", "acme/chat"])
@pytest.mark.parametrize("encoding_format", ["float", None])
def test_embeddings_match_the_upstream(
    make_client: Callable[..., openai.OpenAI],
    direct: openai.OpenAI,
    project_module: str,
    encoding_format: str | None,
) -> None:
    sdk = make_client(project_module)
    extra = {"encoding_format": encoding_format} if encoding_format else {}
    inputs = ["the quick brown fox", "jumps over", "the lazy dog"]
    through = sdk.embeddings.create(model="text-embedding-3-small", input=inputs, **extra)
    expected = direct.embeddings.create(model="text-embedding-3-small", input=inputs, **extra)
    assert [item.index for item in through.data] == [0, 1, 2]
    assert [item.embedding for item in through.data] == [item.embedding for item in expected.data]
    assert all(len(item.embedding) == 8 for item in through.data)
    assert through.usage.prompt_tokens == expected.usage.prompt_tokens


def test_embeddings_dimensions_and_single_input(make_client: Callable[..., openai.OpenAI]) -> None:
    sdk = make_client("acme/embed")
    result = sdk.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=16)
    assert len(result.data) == 1
    assert len(result.data[0].embedding) == 16


def test_embed_module_uses_the_common_key(http: httpx.Client) -> None:
    response = http.post(
        "/acme/embed/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "x", "encoding_format": "float"},
    )
    assert response.status_code == 200, response.text
    seen = response.json()["standin"]
    assert seen["authorization"] == "Bearer test-acme-key"
    assert seen["path"] == "/v1/embeddings"


def test_embed_module_defaults_the_model(http: httpx.Client) -> None:
    response = http.post(
        "/acme/embed/v1/embeddings", json={"input": "x", "encoding_format": "float"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["standin"]["model"] == "text-embedding-3-small"


@pytest.mark.parametrize("project_module", ["acme/chat", "acme/embed", "billing/assistant"])
def test_models_list(make_client: Callable[..., openai.OpenAI], project_module: str) -> None:
    models = list(make_client(project_module).models.list())
    assert models
    assert all(model.id and model.object == "model" for model in models)


def test_models_list_names_the_chat_model(client: openai.OpenAI) -> None:
    assert "gpt-4o-mini" in [model.id for model in client.models.list()]
