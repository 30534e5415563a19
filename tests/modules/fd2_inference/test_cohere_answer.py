"""Cohere v2: answers, streams (split at every byte) and errors in OpenAI's shapes."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.serving.errors import UpstreamError
from fd2.serving.sse import SseDecoder
from fd2_inference.providers.base import ProviderSettings, ProviderStreamError, StreamEvent
from fd2_inference.providers.cohere import CohereProvider

KEY = "co-test-cohere-key-0002"
PROVIDER = CohereProvider(ProviderSettings(name="cohere", base_url="", api_key=KEY))
MODEL = "command-a-03-2025"
USAGE = {
    "billed_units": {"input_tokens": 9, "output_tokens": 4},
    "tokens": {"input_tokens": 70, "output_tokens": 4},
}


def answer(body: dict[str, Any]) -> Mapping[str, Any]:
    return PROVIDER.chat_answer(orjson.dumps(body), model=MODEL)


def test_plain_answer() -> None:
    out = answer(
        {
            "id": "5a50480a",
            "finish_reason": "COMPLETE",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm"},
                    {"type": "text", "text": "Hello!"},
                ],
            },
            "usage": {**USAGE, "cached_tokens": 64},
        }
    )
    assert out["id"] == "chatcmpl-5a50480a"
    assert out["object"] == "chat.completion"
    assert out["model"] == MODEL
    assert out["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}
    ]
    assert out["usage"] == {
        "prompt_tokens": 70,
        "completion_tokens": 4,
        "total_tokens": 74,
        "prompt_tokens_details": {"cached_tokens": 64},
    }


def test_billed_units_when_tokens_are_missing() -> None:
    out = answer(
        {
            "finish_reason": "COMPLETE",
            "message": {"content": []},
            "usage": {"billed_units": {"input_tokens": 3.0, "output_tokens": 2.0}},
        }
    )
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert out["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    out = answer({"finish_reason": reason, "message": {"content": [{"type": "text", "text": "x"}]}})
    assert out["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
def test_failed_generation_is_an_upstream_error(reason: str) -> None:
    with pytest.raises(UpstreamError):
        answer({"finish_reason": reason, "message": {"content": []}})


def test_tool_calls_answer() -> None:
    out = answer(
        {
            "id": "x",
            "finish_reason": "TOOL_CALL",
            "message": {
                "role": "assistant",
                "tool_plan": "I will check the weather in both cities.",
                "tool_calls": [
                    {
                        "id": "get_weather_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "get_weather_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            "usage": USAGE,
        }
    )
    assert out["choices"][0] == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "I will check the weather in both cities.",
            "tool_calls": [
                {
                    "id": "get_weather_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "get_weather_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        "finish_reason": "tool_calls",
    }


def test_answer_that_is_not_an_object() -> None:
    with pytest.raises(UpstreamError):
        PROVIDER.chat_answer(b"<html>", model=MODEL)


def test_embeddings_answer() -> None:
    out = PROVIDER.embeddings_answer(
        orjson.dumps(
            {
                "id": "e1",
                "embeddings": {"float": [[0.1, 0.2], [0.3, 0.4]]},
                "texts": ["a", "b"],
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
                "response_type": "embeddings_by_type",
            }
        ),
        model="embed-v4.0",
    )
    assert out == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
            {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
        ],
        "model": "embed-v4.0",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    with pytest.raises(UpstreamError):
        PROVIDER.embeddings_answer(b'{"embeddings": {"int8": [[1]]}}', model="e")


# -- streams -------------------------------------------------------------------------------


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )


def start(message_id: str = "m1") -> dict[str, Any]:
    return {
        "type": "message-start",
        "id": message_id,
        "delta": {
            "message": {
                "role": "assistant",
                "content": [],
                "tool_plan": "",
                "tool_calls": [],
                "citations": [],
            }
        },
    }


def text(index: int, piece: str) -> dict[str, Any]:
    return {
        "type": "content-delta",
        "index": index,
        "delta": {"message": {"content": {"text": piece}}},
    }


def end(reason: str, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "message-end", "delta": {"finish_reason": reason, "usage": usage or USAGE}}


TEXT_STREAM = sse(
    start(),
    {
        "type": "content-start",
        "index": 0,
        "delta": {"message": {"content": {"type": "text", "text": ""}}},
    },
    text(0, "Hel"),
    text(0, "lo \u00e9 \U0001f600"),
    {"type": "content-end", "index": 0},
    end("COMPLETE"),
)


def run(raw: bytes, cuts: Sequence[int], *, include_usage: bool = True) -> list[Mapping[str, Any]]:
    """Splits `raw` at `cuts`, frames it as the relay does and translates the events."""
    decoder = SseDecoder()
    stream = PROVIDER.chat_stream(model=MODEL, include_usage=include_usage)
    chunks: list[Mapping[str, Any]] = []
    for start_at, end_at in itertools.pairwise([0, *sorted(set(cuts)), len(raw)]):
        for name, data, _ in decoder.feed(raw[start_at:end_at]):
            chunks.extend(
                stream.feed(StreamEvent(name if name != "message" else None, data.encode()))
            )
    decoder.finish()
    chunks.extend(stream.finish())
    return chunks


def deltas(chunks: Sequence[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    return [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks if c["choices"]
    ]


def test_text_stream() -> None:
    chunks = run(TEXT_STREAM, [])
    assert deltas(chunks) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo \u00e9 \U0001f600"}, None),
        ({}, "stop"),
    ]
    assert {c["id"] for c in chunks} == {"chatcmpl-m1"}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 70, "completion_tokens": 4, "total_tokens": 74}
    assert PROVIDER.chat_stream(model=MODEL, include_usage=False).usage is None


def test_text_stream_split_at_every_byte() -> None:
    assert deltas(run(TEXT_STREAM, list(range(1, len(TEXT_STREAM))))) == deltas(
        run(TEXT_STREAM, [])
    )


@given(st.lists(st.integers(1, len(TEXT_STREAM) - 1), max_size=12))
def test_text_stream_split_anywhere(cuts: list[int]) -> None:
    assert deltas(run(TEXT_STREAM, cuts)) == deltas(run(TEXT_STREAM, []))


def call_start(index: int, call_id: str, city: str) -> dict[str, Any]:
    return {
        "type": "tool-call-start",
        "index": index,
        "delta": {
            "message": {
                "tool_calls": {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            }
        },
    }


def call_delta(index: int, piece: str) -> dict[str, Any]:
    return {
        "type": "tool-call-delta",
        "index": index,
        "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}},
    }


TOOL_STREAM = sse(
    start(),
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will"}}},
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": " check."}}},
    call_start(0, "get_weather_a", "Paris"),
    call_delta(0, '{"city":'),
    call_delta(0, '"Paris"}'),
    {"type": "tool-call-end", "index": 0},
    call_start(1, "get_weather_b", "Rome"),
    call_delta(1, '{"city":"Rome"}'),
    {"type": "tool-call-end", "index": 1},
    end("TOOL_CALL"),
)


def test_streamed_parallel_tool_calls() -> None:
    got = deltas(run(TOOL_STREAM, [5, 200, 201, len(TOOL_STREAM) - 2], include_usage=False))
    assert got == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "I will"}, None),
        ({"content": " check."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "get_weather_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "get_weather_b",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 1, "function": {"arguments": '{"city":"Rome"}'}}]}, None),
        ({}, "tool_calls"),
    ]


def test_thinking_blocks_are_left_out() -> None:
    raw = sse(
        start(),
        {
            "type": "content-start",
            "index": 0,
            "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}},
        },
        {
            "type": "content-delta",
            "index": 0,
            "delta": {"message": {"content": {"thinking": "hmm"}}},
        },
        {"type": "content-end", "index": 0},
        {
            "type": "content-start",
            "index": 1,
            "delta": {"message": {"content": {"type": "text", "text": "Yes"}}},
        },
        {"type": "content-end", "index": 1},
        {"type": "citation-start", "index": 0, "delta": {"message": {"citations": {}}}},
        end("MAX_TOKENS"),
    )
    assert deltas(run(raw, [], include_usage=False)) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Yes"}, None),
        ({}, "length"),
    ]


def test_stream_cut_before_message_end() -> None:
    cut = TEXT_STREAM[: TEXT_STREAM.index(b"event: message-end") + 30]
    with pytest.raises(ProviderStreamError) as err:
        run(cut, [7])
    assert (err.value.failure.status, err.value.failure.code) == (502, "stream_incomplete")


def test_stream_that_ends_in_error() -> None:
    raw = sse(
        start(),
        text(0, "Hel"),
        {"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal failure"}},
    )
    with pytest.raises(ProviderStreamError) as err:
        run(raw, [])
    assert err.value.failure.status == 502
    assert err.value.failure.message == "Cohere: internal failure"


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected", "kind", "code"),
    [
        (400, 400, "invalid_request_error", None),
        (401, 401, "authentication_error", "invalid_api_key"),
        (402, 402, "invalid_request_error", None),
        (403, 403, "permission_error", None),
        (404, 404, "not_found_error", "model_not_found"),
        (413, 413, "invalid_request_error", "request_too_large"),
        (422, 400, "invalid_request_error", None),
        (429, 429, "rate_limit_error", "rate_limit_exceeded"),
        (498, 401, "authentication_error", "invalid_api_key"),
        (500, 502, "upstream_error", "bad_gateway"),
        (503, 503, "server_error", "upstream_overloaded"),
        (504, 504, "upstream_error", "gateway_timeout"),
    ],
)
def test_error_statuses(status: int, expected: int, kind: str, code: str | None) -> None:
    failure = PROVIDER.failure(status, {}, orjson.dumps({"id": "e", "message": "It failed."}))
    assert (failure.status, failure.type, failure.code) == (expected, kind, code)
    assert failure.message == "Cohere: It failed."


def test_rate_limit_headers_pass_through() -> None:
    failure = PROVIDER.failure(
        429,
        {
            "Retry-After": "12",
            "X-RateLimit-Remaining": "0",
            "X-Endpoint-Monthly-Call-Limit": "1000",
        },
        b'{"message":"You are using a Trial key, which is limited to 20 API calls / minute."}',
    )
    assert list(failure.headers) == [("retry-after", "12"), ("x-ratelimit-remaining", "0")]


def test_key_never_in_the_message() -> None:
    failure = PROVIDER.failure(401, {}, orjson.dumps({"message": f"invalid api token {KEY}"}))
    assert KEY not in failure.message
    assert PROVIDER.failure(502, {}, b"<html>").message == "Cohere answered HTTP 502."
