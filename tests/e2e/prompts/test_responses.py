"""`/v1/responses` through the official SDK (`responses.create`, `responses.stream`): passed
over the OpenAI chat path (the OpenAI stand-in, the scripted upstream) and translated to Gemini."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from ..conftest import Service
from ..support import assert_no_leak

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
PERSON_FORMAT = {
    "format": {
        "type": "json_schema",
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
        "strict": True,
    }
}


def echoed(text: str) -> list[list[str]]:
    turns: list[list[str]] = json.loads(text)["messages"]
    return turns


def test_create_plain_over_the_openai_standin(chat_sdk: openai.OpenAI) -> None:
    response = chat_sdk.responses.create(
        model="gpt-4o-mini", input="hello there", instructions="Be brief.", store=False
    )
    assert response.object == "response"
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    described = json.loads(response.output_text)
    assert described["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert response.usage is not None and response.usage.total_tokens > 0


def test_stream_over_the_openai_standin(chat_sdk: openai.OpenAI) -> None:
    kinds: list[str] = []
    deltas: list[str] = []
    with chat_sdk.responses.stream(model="gpt-4o-mini", input="count") as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_item.added" in kinds and "response.output_item.done" in kinds
    assert "".join(deltas) == "".join(f"{i};" for i in range(1, 9))
    assert final.output_text == "".join(deltas)
    assert final.status == "completed"


@pytest.mark.parametrize("module", ["scripted", "gemini"])
def test_function_tools_and_previous_response_id(gateway: Service, module: str) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/promptsp/{module}/v1", api_key="unused", max_retries=0
    )
    first = client.responses.create(
        model="tools", input="What is the weather in Paris?", tools=[WEATHER_TOOL]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    second = client.responses.create(
        model="tools",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == "weather: sunny"
    assert second.previous_response_id == first.id
    client.close()


@pytest.mark.parametrize("module", ["scripted", "gemini"])
def test_streamed_function_call_events(gateway: Service, module: str) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/promptsp/{module}/v1", api_key="unused", max_retries=0
    )
    kinds: list[str] = []
    arguments: list[str] = []
    with client.responses.stream(model="tools", input="weather?", tools=[WEATHER_TOOL]) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.function_call_arguments.delta":
                arguments.append(event.delta)
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    assert json.loads("".join(arguments)) == {"city": "Paris"}
    assert final.output[0].type == "function_call"
    client.close()


def test_previous_response_id_carries_the_conversation(scripted_sdk: openai.OpenAI) -> None:
    first = scripted_sdk.responses.create(model="echo", input="my name is Ada", instructions="A")
    second = scripted_sdk.responses.create(
        model="echo", input="what is my name?", previous_response_id=first.id, instructions="B"
    )
    turns = echoed(second.output_text)
    # Instructions are not carried over (as OpenAI does): only this request's.
    assert turns[0] == ["system", "B"]
    assert turns[1] == ["user", "my name is Ada"]
    assert turns[2][0] == "assistant"
    assert turns[3] == ["user", "what is my name?"]


def test_retrieve_and_delete_a_stored_response(scripted_sdk: openai.OpenAI) -> None:
    created = scripted_sdk.responses.create(model="echo", input="keep me")
    retrieved = scripted_sdk.responses.retrieve(created.id)
    assert retrieved.id == created.id
    assert retrieved.output_text == created.output_text
    scripted_sdk.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        scripted_sdk.responses.retrieve(created.id)
    assert "response_not_found" in str(caught.value.body)


def test_previous_response_id_shared_between_replicas(
    replicas: tuple[Service, Service],
) -> None:
    a, b = (
        openai.OpenAI(base_url=f"{s.url}/promptsp/scripted/v1", api_key="x", max_retries=0)
        for s in replicas
    )
    first = a.responses.create(model="echo", input="remember 42")
    second = b.responses.create(model="echo", input="what?", previous_response_id=first.id)
    assert echoed(second.output_text)[0] == ["user", "remember 42"]


def test_store_false_is_not_kept(scripted_sdk: openai.OpenAI) -> None:
    first = scripted_sdk.responses.create(model="echo", input="forget me", store=False)
    assert first.store is False
    with pytest.raises(openai.NotFoundError) as caught:
        scripted_sdk.responses.create(model="echo", input="x", previous_response_id=first.id)
    assert "response_not_found" in str(caught.value.body)


def test_text_format_json_schema_is_native_and_validated(scripted_sdk: openai.OpenAI) -> None:
    raw = scripted_sdk.responses.with_raw_response.create(
        model="json", input="who?", text=PERSON_FORMAT
    )
    response = raw.parse()
    assert json.loads(response.output_text) == {"name": "Ada", "age": 36}
    assert raw.headers["x-fd2-structured-validated"] == "true"
    assert raw.headers["x-fd2-structured-attempts"] == "1"


def test_an_answer_failing_the_schema_is_asked_again(scripted_sdk: openai.OpenAI) -> None:
    raw = scripted_sdk.responses.with_raw_response.create(
        model="reask", input="who?", text=PERSON_FORMAT
    )
    assert json.loads(raw.parse().output_text) == {"name": "Ada", "age": 36}
    assert raw.headers["x-fd2-structured-validated"] == "true"
    assert raw.headers["x-fd2-structured-attempts"] == "2"


def test_an_answer_that_never_validates_says_so(scripted_sdk: openai.OpenAI) -> None:
    raw = scripted_sdk.responses.with_raw_response.create(
        model="bad-json", input="who?", text=PERSON_FORMAT
    )
    assert raw.headers["x-fd2-structured-validated"] == "false"
    assert raw.headers["x-fd2-structured-attempts"] == "3"


def test_gemini_plain_and_streamed(gemini_sdk: openai.OpenAI) -> None:
    response = gemini_sdk.responses.create(model="echo", input="hi", instructions="sys")
    assert echoed(response.output_text) == [["system", "sys"], ["user", "hi"]]
    with gemini_sdk.responses.stream(model="echo", input="hi") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert echoed(text) == [["user", "hi"]]
    assert final.output_text == text


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "echo", "input": 5}, 400, "input"),
        ({"model": "echo", "input": "x", "tools": [{"type": "web_search"}]}, 400, "tools[0].type"),
        ({"model": "echo", "input": "x", "previous_response_id": "resp_nope"}, 404, None),
        ({"model": "echo", "input": "x", "background": True}, 400, "background"),
        (
            {
                "model": "echo",
                "input": "x",
                "text": {
                    "format": {"type": "json_schema", "name": "x", "schema": {"type": "nonsense"}}
                },
            },
            400,
            "text.format.schema",
        ),
    ],
)
def test_bad_requests_are_openai_errors(
    scripted_sdk: openai.OpenAI, body: dict[str, Any], status: int, param: str | None
) -> None:
    raw = scripted_sdk.post("/responses", body=body, cast_to=object) if False else None
    del raw
    import httpx

    answer = httpx.post(f"{scripted_sdk.base_url}responses", json=body, timeout=10)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] == param
    assert "x-request-id" in answer.headers
    assert_no_leak(answer.text)
