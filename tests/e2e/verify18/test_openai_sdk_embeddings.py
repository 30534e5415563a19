"""The official `openai` SDK's embeddings against model_server modules through fd2: float and
base64, over the Control Tower's typed path, with a project key (api_key_enabled) or the JWT
module's token, many inputs batched, and the SDK's own exceptions for fd2's refusals."""

from __future__ import annotations

import base64
import struct
import sys

import httpx
import openai
import pytest

from ..conftest import Service
from ..devkit_services import STANDINS, reset, seen
from .devkit_project import CLIENT_KEY, PROJECT, services_fixture, token

sys.path.insert(0, str(STANDINS))
from model_server import vector  # the stand-in's own vectors, to compare with

__all__ = ["services_fixture"]

Services = dict[str, Service]


def sdk(services: Services, module: str, credential: str) -> openai.OpenAI:
    base = f"{services['fd2'].url}/{PROJECT}/models/{module}/v1"  # the Control Tower's path
    return openai.OpenAI(base_url=base, api_key=credential, max_retries=0, timeout=20)


def test_float_and_base64_give_the_servers_vectors(services: Services) -> None:
    texts = ["first text", "second text", "third"]
    with sdk(services, "keyed-models", CLIENT_KEY) as client:
        floats = client.embeddings.create(model="any-model", input=texts, encoding_format="float")
        packed = client.embeddings.create(model="any-model", input=texts)  # base64
    assert [item.embedding for item in floats.data] == [vector(text) for text in texts]
    for item, text in zip(packed.data, texts, strict=True):
        assert item.embedding == pytest.approx(vector(text), abs=1e-6)
    assert floats.model == packed.model == "any-model"
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 0


def test_base64_is_little_endian_float32_on_the_wire(services: Services) -> None:
    answer = httpx.post(
        f"{services['fd2'].url}/{PROJECT}/keyed-models/v1/embeddings",
        json={"input": "wire", "encoding_format": "base64"},
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    raw = base64.b64decode(answer.json()["data"][0]["embedding"])
    expected = vector("wire")
    assert len(raw) == 4 * len(expected)
    assert list(struct.unpack(f"<{len(expected)}f", raw)) == pytest.approx(expected, abs=1e-6)


def test_many_inputs_are_batched_and_come_back_in_order(services: Services) -> None:
    reset(services["models"])
    texts = [f"sentence {index}" for index in range(37)]
    with sdk(services, "open-models", CLIENT_KEY) as client:
        result = client.embeddings.create(model="m", input=texts)
    assert [item.index for item in result.data] == list(range(37))
    for item, text in zip(result.data, texts, strict=True):
        assert item.embedding == pytest.approx(vector(text), abs=1e-6)
    sizes = [len(call["body"]["texts"]) for call in seen(services["models"])]
    assert sorted(sizes) == [1] + [4] * 9  # batch_size 4


def test_a_token_of_the_jwt_module_works_on_either(services: Services) -> None:
    with sdk(services, "either-models", token()) as client:
        result = client.embeddings.create(model="m", input="hi", encoding_format="float")
    assert result.data[0].embedding == vector("hi")


def test_the_sdks_exceptions_for_fd2s_refusals(services: Services) -> None:
    with (
        sdk(services, "keyed-models", "not-a-key") as client,
        pytest.raises(openai.AuthenticationError) as denied,
    ):
        client.embeddings.create(model="m", input="x")
    assert denied.value.response.headers.get("x-request-id")
    with sdk(services, "keyed-models", CLIENT_KEY) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            client.embeddings.create(model="m", input="x", dimensions=4)
        assert bad.value.body["param"] == "dimensions"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model="m", input=[[1, 2, 3]])  # token ids
        with pytest.raises(openai.InternalServerError) as failed:
            client.embeddings.create(model="boom", input="x")
    assert failed.value.status_code == 502
    with (
        sdk(services, "down-models", CLIENT_KEY) as client,
        pytest.raises(openai.InternalServerError),
    ):
        client.embeddings.create(model="m", input="x")
