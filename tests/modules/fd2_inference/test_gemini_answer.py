"""Gemini: answers, streams (split at every byte) and errors in OpenAI's shapes."""

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
from fd2_inference.providers.gemini import GeminiProvider
from fd2_inference.providers.gemini_ids import split_call_id

KEY = "AIzaSy-test-gemini-key-0002"
PROVIDER = GeminiProvider(ProviderSettings(name="gemini", base_url="", api_key=KEY))
MODEL = "gemini-2.5-flash"


def answer(body: dict[str, Any]) -> Mapping[str, Any]:
    return PROVIDER.chat_answer(orjson.dumps(body), model=MODEL)


def test_plain_answer() -> None:
    out = answer(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "thinking...", "thought": True},
                            {"text": "Hello"},
                            {"text": "!"},
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 5,
                "cachedContentTokenCount": 4,
                "totalTokenCount": 18,
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "abc",
        }
    )
    assert out["id"] == "chatcmpl-abc"
    assert out["object"] == "chat.completion"
    assert out["model"] == MODEL
    assert isinstance(out["created"], int)
    assert out["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}
    ]
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 8,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    out = answer({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]})
    assert out["choices"][0]["finish_reason"] == finish


def test_parallel_function_calls() -> None:
    out = answer(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                                "thoughtSignature": "U0lH",
                            },
                            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ]
        }
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"] for c in calls] == [
        {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"name": "get_weather", "arguments": '{"city":"Rome"}'},
    ]
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    assert split_call_id(calls[0]["id"]) == "U0lH"
    assert split_call_id(calls[1]["id"]) is None
    assert "usage" not in out


def test_n_candidates() -> None:
    out = answer(
        {
            "candidates": [
                {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
                {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1},
            ]
        }
    )
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in out["choices"]] == [
        (0, "A", "stop"),
        (1, "B", "length"),
    ]


def test_blocked_prompt_is_a_content_filter_choice() -> None:
    out = answer(
        {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        }
    )
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "finish_reason": "content_filter",
        }
    ]
    assert out["usage"] == {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7}


@pytest.mark.parametrize("payload", [b"not json", b"[1]", b""])
def test_answer_that_is_not_an_object(payload: bytes) -> None:
    with pytest.raises(UpstreamError):
        PROVIDER.chat_answer(payload, model=MODEL)


def test_embeddings_answers() -> None:
    one = PROVIDER.embeddings_answer(orjson.dumps({"embedding": {"values": [0.1, 0.2]}}), model="e")
    assert one == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "model": "e",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    many = PROVIDER.embeddings_answer(
        orjson.dumps({"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}), model="e"
    )
    assert [d["embedding"] for d in many["data"]] == [[1.0], [2.0]]
    assert [d["index"] for d in many["data"]] == [0, 1]


# -- streams -------------------------------------------------------------------------------


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)


TEXT_STREAM = sse(
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
        "responseId": "r1",
        "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
    },
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "lo \u00e9\u00e8 \U0001f600"}]},
                "index": 0,
            }
        ]
    },
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "!"}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 9},
    },
)


def run(raw: bytes, cuts: Sequence[int], *, include_usage: bool = True) -> list[Mapping[str, Any]]:
    """Splits `raw` at `cuts`, frames it as the relay does and translates the events."""
    decoder = SseDecoder()
    stream = PROVIDER.chat_stream(model=MODEL, include_usage=include_usage)
    chunks: list[Mapping[str, Any]] = []
    bounds = [0, *sorted(set(cuts)), len(raw)]
    for start, end in itertools.pairwise(bounds):
        for name, data, _ in decoder.feed(raw[start:end]):
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
        ({"role": "assistant", "content": "Hel"}, None),
        ({"content": "lo \u00e9\u00e8 \U0001f600"}, None),
        ({"content": "!"}, None),
        ({}, "stop"),
    ]
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


def test_stream_without_usage_asked() -> None:
    chunks = run(TEXT_STREAM, [], include_usage=False)
    assert all(c["choices"] for c in chunks)
    assert "usage" not in chunks[-1]


@given(st.lists(st.integers(1, len(TEXT_STREAM) - 1), max_size=12))
def test_text_stream_split_anywhere(cuts: list[int]) -> None:
    assert deltas(run(TEXT_STREAM, cuts)) == deltas(run(TEXT_STREAM, []))


def test_text_stream_split_at_every_byte() -> None:
    whole = deltas(run(TEXT_STREAM, []))
    assert deltas(run(TEXT_STREAM, list(range(1, len(TEXT_STREAM))))) == whole


TOOL_STREAM = sse(
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Checking."}]}, "index": 0}]},
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "U0lH",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 20,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 2,
            "totalTokenCount": 32,
        },
    },
)


def test_streamed_parallel_tool_calls() -> None:
    chunks = run(TOOL_STREAM, [7, 100, 101, len(TOOL_STREAM) - 3])
    got = deltas(chunks)
    assert got[0] == ({"role": "assistant", "content": "Checking."}, None)
    first, second = got[1][0]["tool_calls"], got[2][0]["tool_calls"]
    assert [(c["index"], c["type"], c["function"]) for c in first + second] == [
        (0, "function", {"name": "get_weather", "arguments": '{"city":"Paris"}'}),
        (1, "function", {"name": "get_weather", "arguments": '{"city":"Rome"}'}),
    ]
    assert split_call_id(first[0]["id"]) == "U0lH"
    assert got[3] == ({}, "tool_calls")
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 20,
        "completion_tokens": 12,
        "total_tokens": 32,
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def test_stream_of_two_candidates() -> None:
    raw = sse(
        {
            "candidates": [
                {"content": {"parts": [{"text": "A"}]}, "index": 0},
                {"content": {"parts": [{"text": "B"}]}, "index": 1},
            ]
        },
        {
            "candidates": [
                {"content": {"parts": [{"text": "."}]}, "finishReason": "STOP", "index": 0}
            ]
        },
        {"candidates": [{"content": {"parts": []}, "finishReason": "MAX_TOKENS", "index": 1}]},
    )
    chunks = run(raw, [], include_usage=False)
    by_index = [
        (c["choices"][0]["index"], c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
        for c in chunks
    ]
    assert by_index == [
        (0, {"role": "assistant", "content": "A"}, None),
        (1, {"role": "assistant", "content": "B"}, None),
        (0, {"content": "."}, None),
        (0, {}, "stop"),
        (1, {}, "length"),
    ]


def test_stream_cut_before_finish_is_an_error() -> None:
    cut = TEXT_STREAM[: TEXT_STREAM.rindex(b"data: ") + 20]  # the last event only half sent
    with pytest.raises(ProviderStreamError) as err:
        run(cut, [3])
    assert err.value.failure.status == 502
    assert err.value.failure.code == "stream_incomplete"


def test_empty_stream_is_an_error() -> None:
    with pytest.raises(ProviderStreamError):
        run(b"", [])


def test_error_inside_the_stream() -> None:
    raw = sse({"candidates": [{"content": {"parts": [{"text": "A"}]}}]}) + sse(
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    )
    with pytest.raises(ProviderStreamError) as err:
        run(raw, [])
    assert err.value.failure.status == 503
    assert err.value.failure.message == "Gemini: The model is overloaded."


def test_blocked_prompt_stream() -> None:
    chunks = run(
        sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}), [], include_usage=False
    )
    assert deltas(chunks) == [({"role": "assistant"}, None), ({}, "content_filter")]


# -- errors --------------------------------------------------------------------------------


def google_error(code: int, status: str, message: str, details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return orjson.dumps({"error": error})


@pytest.mark.parametrize(
    ("http", "status", "expected", "kind", "code"),
    [
        (400, "INVALID_ARGUMENT", 400, "invalid_request_error", None),
        (400, "FAILED_PRECONDITION", 400, "invalid_request_error", None),
        (401, "UNAUTHENTICATED", 401, "authentication_error", "invalid_api_key"),
        (403, "PERMISSION_DENIED", 403, "permission_error", None),
        (404, "NOT_FOUND", 404, "not_found_error", "model_not_found"),
        (413, "INVALID_ARGUMENT", 413, "invalid_request_error", "request_too_large"),
        (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_error", "rate_limit_exceeded"),
        (500, "INTERNAL", 502, "upstream_error", "bad_gateway"),
        (503, "UNAVAILABLE", 503, "server_error", "upstream_overloaded"),
        (504, "DEADLINE_EXCEEDED", 504, "upstream_error", "gateway_timeout"),
    ],
)
def test_error_statuses(http: int, status: str, expected: int, kind: str, code: str | None) -> None:
    failure = PROVIDER.failure(http, {}, google_error(http, status, "It failed."))
    assert (failure.status, failure.type, failure.code) == (expected, kind, code)
    assert failure.message == "Gemini: It failed."


def test_wrong_key_is_401() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    failure = PROVIDER.failure(
        400, {}, google_error(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}", details)
    )
    assert failure.status == 401
    assert KEY not in failure.message


def test_rate_limit_headers() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.2s"}]
    payload = google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", details)
    failure = PROVIDER.failure(429, {"Content-Type": "application/json"}, payload)
    assert list(failure.headers) == [("retry-after", "37")]
    failure = PROVIDER.failure(429, {"Retry-After": "5", "X-RateLimit-Remaining": "0"}, payload)
    assert list(failure.headers) == [("retry-after", "5"), ("x-ratelimit-remaining", "0")]


def test_error_that_is_not_json() -> None:
    failure = PROVIDER.failure(502, {}, b"<html>Bad Gateway</html>")
    assert (failure.status, failure.message) == (502, "Gemini answered HTTP 502.")
