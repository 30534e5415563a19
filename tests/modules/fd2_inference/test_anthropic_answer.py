"""Anthropic answers, stream events and errors -> OpenAI's shapes (providers/anthropic_*.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fd2.serving.errors import UpstreamError
from fd2_inference.providers.anthropic import AnthropicProvider
from fd2_inference.providers.base import ProviderSettings, ProviderStreamError, StreamEvent

PROVIDER = AnthropicProvider(ProviderSettings(name="anthropic", base_url="http://x", api_key="k"))


def _message(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> bytes:
    return orjson.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
        }
    )


def test_text_answer() -> None:
    answer = PROVIDER.chat_answer(
        _message(
            [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
            cache_read_input_tokens=4,
        ),
        model="asked",
    )
    assert answer["object"] == "chat.completion"
    assert answer["id"] == "msg_01"
    assert answer["model"] == "claude-x"
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert answer["usage"] == {
        "prompt_tokens": 14,
        "completion_tokens": 5,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_tool_answer() -> None:
    answer = PROVIDER.chat_answer(
        _message(
            [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
            stop="tool_use",
        ),
        model="m",
    )
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("stop_sequence", "stop"), ("max_tokens", "length"), ("refusal", "content_filter")],
)
def test_finish_reasons(stop: str, finish: str) -> None:
    answer = PROVIDER.chat_answer(_message([{"type": "text", "text": "x"}], stop=stop), model="m")
    assert answer["choices"][0]["finish_reason"] == finish


def test_invalid_answer_is_502() -> None:
    with pytest.raises(UpstreamError):
        PROVIDER.chat_answer(b"<html>", model="m")


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (400, "invalid_request_error", 400),
        (401, "authentication_error", 401),
        (403, "permission_error", 403),
        (404, "not_found_error", 404),
        (413, "request_too_large", 413),
        (429, "rate_limit_error", 429),
        (529, "overloaded_error", 503),
        (500, "api_error", 502),
        (503, "something_new", 503),
        (502, "something_new", 502),
    ],
)
def test_errors(status: int, kind: str, expected: int) -> None:
    payload = orjson.dumps({"type": "error", "error": {"type": kind, "message": "Nope"}})
    headers = {
        "Retry-After": "7",
        "anthropic-ratelimit-requests-remaining": "0",
        "x-secret-internal": "no",
    }
    failure = PROVIDER.failure(status, headers, payload)
    assert failure.status == expected
    assert failure.message == "Anthropic: Nope"
    assert ("retry-after", "7") in failure.headers
    assert ("anthropic-ratelimit-requests-remaining", "0") in failure.headers
    assert all(name != "x-secret-internal" for name, _ in failure.headers)


def test_error_without_json_body() -> None:
    failure = PROVIDER.failure(502, {}, b"Bad gateway")
    assert (failure.status, failure.type) == (502, "upstream_error")


def _events(*pairs: tuple[str, dict[str, Any]]) -> list[StreamEvent]:
    return [StreamEvent(name, orjson.dumps(data)) for name, data in pairs]


START = (
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_s",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "cache_read_input_tokens": 2, "output_tokens": 1},
        },
    },
)
STOP = ("message_stop", {"type": "message_stop"})


def _delta(stop: str, output: int) -> tuple[str, dict[str, Any]]:
    return (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": output},
        },
    )


def _run(events: list[StreamEvent], include_usage: bool = True) -> list[dict[str, Any]]:
    translator = PROVIDER.chat_stream(model="asked", include_usage=include_usage)
    chunks: list[dict[str, Any]] = []
    for event in events:
        chunks.extend(dict(chunk) for chunk in translator.feed(event))
    chunks.extend(dict(chunk) for chunk in translator.finish())
    return chunks


def test_text_stream() -> None:
    chunks = _run(
        _events(
            START,
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "Hel"},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "lo"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _delta("end_turn", 7),
            STOP,
        )
    )
    assert [c["choices"][0]["delta"] for c in chunks[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["id"] == "msg_s" and c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 14
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 2}


def test_tool_stream_indexes_ids_and_argument_pieces() -> None:
    def tool(index: int, tool_id: str) -> tuple[str, dict[str, Any]]:
        return (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": "get_weather",
                    "input": {},
                },
            },
        )

    def args(index: int, piece: str) -> tuple[str, dict[str, Any]]:
        return (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            },
        )

    translator = PROVIDER.chat_stream(model="m", include_usage=False)
    chunks: list[Any] = []
    for event in _events(
        START,
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Checking."},
            },
        ),
        tool(1, "toolu_a"),
        args(1, ""),
        args(1, '{"city": "Pa'),
        args(1, 'ris"}'),
        tool(2, "toolu_b"),
        args(2, '{"city": "Rome"}'),
        _delta("tool_use", 30),
        STOP,
    ):
        chunks.extend(translator.feed(event))
    assert translator.usage == {"prompt_tokens": 14, "completion_tokens": 30, "total_tokens": 44}
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[2] == {
        "tool_calls": [
            {
                "index": 0,
                "id": "toolu_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    assert deltas[3] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}
    assert deltas[4] == {"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}
    assert deltas[5]["tool_calls"][0]["index"] == 1
    assert deltas[6] == {
        "tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Rome"}'}}]
    }
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in chunks[-1]
    assert translator.finish() == ()


def test_error_event_and_cut_stream() -> None:
    translator = PROVIDER.chat_stream(model="m", include_usage=False)
    translator.feed(_events(START)[0])
    with pytest.raises(ProviderStreamError) as caught:
        translator.feed(
            StreamEvent(
                "error",
                b'{"type": "error", "error": {"type": "overloaded_error", "message": "Busy"}}',
            )
        )
    assert caught.value.failure.status == 503
    cut = PROVIDER.chat_stream(model="m", include_usage=False)
    cut.feed(_events(START)[0])
    with pytest.raises(ProviderStreamError) as ended:
        cut.finish()
    assert ended.value.failure.status == 502
    with pytest.raises(ProviderStreamError):
        PROVIDER.chat_stream(model="m", include_usage=False).feed(StreamEvent(None, b"{not json"))


def test_json_object_answer_and_stream() -> None:
    forced = {"type": "tool_use", "id": "toolu_j", "name": "fd2_json_object", "input": {"a": 1}}
    answer = PROVIDER.chat_answer(_message([forced], stop="tool_use"), model="m")
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": '{"a":1}', "refusal": None}
    assert choice["finish_reason"] == "stop"
    chunks = _run(
        _events(
            START,
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {**forced, "input": {}},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": "1}"},
                },
            ),
            _delta("tool_use", 5),
            STOP,
        ),
        include_usage=False,
    )
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas[1:3] == [{"content": '{"a": '}, {"content": "1}"}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("tool_calls" not in delta for delta in deltas)
