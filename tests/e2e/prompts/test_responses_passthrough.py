"""`/v1/responses` relayed to an upstream that has it (`responses.passthrough`), through the
official SDK: plain, streamed, an fd2 prompt rendered into the input first, an upstream error
relayed without the credential it quotes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from ..conftest import Service
from ..support import assert_no_leak
from .conftest import PROJECT


@pytest.fixture
def native(gateway: Service) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/{PROJECT}/native/v1", api_key="unused", max_retries=0
    )
    yield client
    client.close()


def test_plain_and_streamed_are_the_upstreams_own(native: openai.OpenAI) -> None:
    response = native.responses.create(model="echo", input="hi", previous_response_id="resp_x")
    assert response.id.startswith("resp_upstream_")
    seen = json.loads(response.output_text)
    assert seen["input"] == "hi"
    assert "previous_response_id" in seen["extra"]  # the upstream's to resolve
    with native.responses.stream(model="echo", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert json.loads(final.output_text)["input"] == "hi"


def test_an_fd2_prompt_is_rendered_before_it_goes_upstream(native: openai.OpenAI) -> None:
    response = native.responses.create(
        model="echo", prompt={"id": "extract", "variables": {"text": "Ada"}}, input="more"
    )
    seen = json.loads(response.output_text)
    assert seen["input"] == [
        {"role": "user", "content": "Who is in: Ada"},
        {"role": "user", "content": "more"},
    ]
    assert "prompt" not in seen["extra"]
    assert "text" in seen["extra"]  # the version's output schema, as text.format


def test_an_unknown_prompt_id_is_the_upstreams(native: openai.OpenAI) -> None:
    response = native.responses.create(model="echo", prompt={"id": "pmpt_upstream_own"})
    assert "prompt" in json.loads(response.output_text)["extra"]


def test_an_upstream_error_is_relayed_without_the_credential(native: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        native.responses.create(model="error-401", input="x")
    text = json.dumps(caught.value.body)
    assert "test-billing-key" not in text
    assert_no_leak(text)
