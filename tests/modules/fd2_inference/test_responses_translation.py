"""The Responses API's pure translations: request to chat body, chat answer to response, chat
chunks to typed events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fd2.serving.errors import BadRequest
from fd2_inference.responses.answer import from_chat, history_messages, skeleton
from fd2_inference.responses.events import ResponseEvents
from fd2_inference.responses.request import chat_body, check_fields


def test_input_items_become_chat_messages() -> None:
    body = {
        "model": "m",
        "instructions": "be brief",
        "input": [
            {"role": "developer", "content": "dev"},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                         {"type": "input_image", "image_url": "https://x/i.png"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        ],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"},
        "max_output_tokens": 50,
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        "reasoning": {"effort": "low"},
    }  # fmt: skip
    chat = chat_body(body, [])
    assert chat["messages"][0] == {"role": "system", "content": "be brief"}
    assert chat["messages"][1] == {"role": "system", "content": "dev"}
    assert chat["messages"][2]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://x/i.png"},
    }
    assert [c["id"] for c in chat["messages"][3]["tool_calls"]] == ["c1", "c2"]
    assert chat["messages"][4] == {"role": "tool", "tool_call_id": "c1", "content": "one"}
    assert chat["messages"][5] == {"role": "assistant", "content": "ok"}
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["max_tokens"] == 50
    assert chat["response_format"]["json_schema"] == {"name": "x", "schema": {"type": "object"}}
    assert chat["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 1}, "input"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
         "input[0].content[0].type"),
    ],
)  # fmt: skip
def test_what_chat_cannot_carry_is_a_named_400(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        chat_body(body, [])
    assert caught.value.param == param


def test_unknown_fields_and_background_are_refused() -> None:
    with pytest.raises(BadRequest):
        check_fields({"surprise": 1})
    with pytest.raises(BadRequest):
        check_fields({"background": True})


def test_a_chat_answer_as_a_response() -> None:
    answer = {
        "model": "m",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
    response = from_chat({"input": "x"}, answer, "resp_1", store=True)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["usage"]["total_tokens"] == 5
    assert history_messages(response["output"]) == [
        {
            "role": "assistant",
            "content": "hi",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        }
    ]


def _events(data: bytes) -> list[dict[str, Any]]:
    out = []
    for block in data.decode().split("\n\n"):
        if block:
            name, payload = block.split("\n")
            event = json.loads(payload.removeprefix("data: "))
            assert name == f"event: {event['type']}"
            out.append(event)
    return out


def test_stream_events_in_order_with_sequence_numbers() -> None:
    events = ResponseEvents(skeleton({}, "resp_1", "m", store=False))
    data = events.start()
    data += events.feed(
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}}]}
    )
    data += events.feed({"choices": [{"index": 0, "delta": {"content": "llo"}}]})
    call = {"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a"'}}
    data += events.feed({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    more = {"index": 0, "function": {"arguments": ": 1}"}}
    data += events.feed(
        {"choices": [{"index": 0, "delta": {"tool_calls": [more]}, "finish_reason": "tool_calls"}]}
    )
    data += events.feed({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    data += events.finish()
    parsed = _events(data)
    assert [e["sequence_number"] for e in parsed] == list(range(len(parsed)))
    assert [e["type"] for e in parsed] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = parsed[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["output"][1]["arguments"] == '{"a": 1}'
    assert final["usage"]["total_tokens"] == 3


def test_a_failed_stream_ends_with_error_and_response_failed() -> None:
    events = ResponseEvents(skeleton({}, "resp_1", "m", store=False))
    events.start()
    parsed = _events(events.fail(502, "bad_gateway", "upstream broke"))
    assert [e["type"] for e in parsed] == ["error", "response.failed"]
    assert parsed[0]["code"] == "bad_gateway"
    assert parsed[1]["response"]["status"] == "failed"
