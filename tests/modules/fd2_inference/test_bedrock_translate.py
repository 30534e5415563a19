"""Bedrock's pure transforms: OpenAI chat -> Converse body, Converse answer -> chat.completion,
ConverseStream events -> chunks, Titan embeddings, and errors -> OpenAI's terms."""

from __future__ import annotations

import datetime
from typing import Any

import orjson
import pytest

from fd2.serving.errors import ConfigError
from fd2_inference.providers.base import (
    ProviderSettings,
    ProviderStreamError,
    StreamEvent,
    UnsupportedParameter,
)
from fd2_inference.providers.bedrock import BedrockProvider
from fd2_inference.providers.eventstream import frame_eventstream

from .bedrock_frames import event

PNG = "iVBORw0KGgo="
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


def provider(policy: str = "refuse") -> BedrockProvider:
    settings = ProviderSettings(
        name="bedrock",
        base_url="http://127.0.0.1:9",
        region="us-east-1",
        unsupported_params=policy,  # type: ignore[arg-type]
        credentials={"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "s3cret"},
    )
    return BedrockProvider(
        settings, clock=lambda: datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    )


def converse(body: dict[str, Any], policy: str = "refuse") -> dict[str, Any]:
    call = provider(policy).chat_call({"model": "m", **body}, stream=False)
    assert call.body is not None
    result: dict[str, Any] = orjson.loads(call.body)
    return result


# --- requests


def test_a_full_conversation() -> None:
    body = converse(
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather here?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris"}',
                            },
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
                {"role": "user", "content": "Thanks. And tomorrow?"},
            ],
            "max_tokens": 100,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "tools": [WEATHER],
            "tool_choice": "required",
            "user": "someone",
        }
    )
    assert body == {
        "system": [{"text": "Be terse."}, {"text": "No emoji."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "Weather here?"},
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": "call_1",
                            "name": "get_weather",
                            "input": {"location": "Paris"},
                        }
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "Sunny"}]}},
                    {"text": "Thanks. And tomorrow?"},
                ],
            },
        ],
        "inferenceConfig": {
            "maxTokens": 100,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_weather",
                        "description": "Current weather of a city.",
                        "inputSchema": {"json": WEATHER["function"]["parameters"]},  # type: ignore[index]
                    }
                }
            ],
            "toolChoice": {"any": {}},
        },
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"tool": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choices(choice: Any, expected: dict[str, Any]) -> None:
    body = converse(
        {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": choice}
    )
    assert body["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_offers_no_tools() -> None:
    body = converse(
        {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": "none"}
    )
    assert "toolConfig" not in body


def test_json_schema_is_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}}
    body = converse(
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "capital", "schema": schema},
            },
        }
    )
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "answer_as_capital",
                    "description": "The answer, given as this tool's input.",
                    "inputSchema": {"json": schema},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "answer_as_capital"}},
    }
    with pytest.raises(UnsupportedParameter) as caught:
        converse(
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [WEATHER],
                "response_format": {"type": "json_object"},
            }
        )
    assert caught.value.param == "response_format"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            "messages",
        ),
    ],
)
def test_refused_parameters(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        converse({"messages": [{"role": "user", "content": "x"}], **extra})
    assert caught.value.param == param
    assert "bedrock" in str(caught.value)


def test_dropped_parameters_under_the_drop_policy() -> None:
    body = converse(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                }
            ],
            "logprobs": True,
        },
        policy="drop",
    )
    assert body == {"messages": [{"role": "user", "content": [{"text": "look"}]}]}
    call = provider("drop").chat_call(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 1, "logprobs": True},
        stream=False,
    )
    assert call.dropped == ("seed", "logprobs")
    plain = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert provider().chat_call(plain, stream=False).dropped == ()
    # n > 1 is refused even under `drop`: leaving it out would change the answer's shape.
    with pytest.raises(UnsupportedParameter):
        converse({"messages": [{"role": "user", "content": "x"}], "n": 3}, policy="drop")


def test_settings_are_required() -> None:
    with pytest.raises(ConfigError, match="region"):
        BedrockProvider(ProviderSettings(name="bedrock", base_url=""))
    with pytest.raises(ConfigError, match="aws_secret_access_key"):
        BedrockProvider(
            ProviderSettings(
                name="bedrock",
                base_url="",
                region="us-east-1",
                credentials={"aws_access_key_id": "x"},
            )
        )


def test_default_base_url_is_the_regional_runtime() -> None:
    settings = ProviderSettings(
        name="bedrock",
        base_url="",
        region="ap-northeast-1",
        credentials={"aws_access_key_id": "a", "aws_secret_access_key": "b"},
    )
    assert "bedrock-runtime.ap-northeast-1.amazonaws.com" in repr(BedrockProvider(settings))


# --- answers


def answer(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> bytes:
    return orjson.dumps(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, **usage},
            "metrics": {"latencyMs": 100},
        }
    )


def test_plain_answer() -> None:
    result = provider().chat_answer(
        answer([{"text": "Hello"}, {"text": "!"}], cacheReadInputTokens=90), model="m"
    )
    assert result["object"] == "chat.completion"
    assert result["model"] == "m"
    assert result["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "total_tokens": 105,
        "prompt_tokens_details": {"cached_tokens": 90},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    result = provider().chat_answer(answer([{"text": "x"}], stop), model="m")
    assert result["choices"][0]["finish_reason"] == finish


def test_tool_use_answer() -> None:
    content = [
        {"text": "Let me check."},
        {
            "toolUse": {
                "toolUseId": "tooluse_1",
                "name": "get_weather",
                "input": {"location": "Paris"},
            }
        },
    ]
    message = provider().chat_answer(answer(content, "tool_use"), model="m")["choices"][0][
        "message"
    ]
    assert message["content"] == "Let me check."
    assert message["tool_calls"] == [
        {
            "id": "tooluse_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
        }
    ]


def test_forced_answer_tool_becomes_the_content() -> None:
    content = [
        {"toolUse": {"toolUseId": "t", "name": "answer_as_capital", "input": {"capital": "Paris"}}}
    ]
    choice = provider().chat_answer(answer(content, "tool_use"), model="m")["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert orjson.loads(choice["message"]["content"]) == {"capital": "Paris"}
    assert "tool_calls" not in choice["message"]


# --- streams


def run_stream(frames: list[bytes], include_usage: bool = True) -> list[dict[str, Any]]:
    translator = provider().chat_stream(model="m", include_usage=include_usage)
    deframer = frame_eventstream()
    whole = b"".join(frames)
    chunks: list[dict[str, Any]] = []
    for at in range(0, len(whole), 11):
        for stream_event in deframer.feed(whole[at : at + 11]):
            chunks.extend(dict(c) for c in translator.feed(stream_event))
    assert deframer.finish() == 0
    chunks.extend(dict(c) for c in translator.finish())
    assert translator.usage is not None or not include_usage
    return chunks


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


def test_text_stream() -> None:
    chunks = run_stream(
        [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "max_tokens"}),
            event(
                "metadata",
                {
                    "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
                    "metrics": {"latencyMs": 1},
                },
            ),
        ]
    )
    assert deltas(chunks) == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert len({c["id"] for c in chunks}) == 1


def test_parallel_tool_call_stream() -> None:
    frames = [event("messageStart", {"role": "assistant"})]
    for block, (tool_id, city) in enumerate(
        [("tooluse_a", "Paris"), ("tooluse_b", "Tokyo")], start=1
    ):
        frames.append(
            event(
                "contentBlockStart",
                {
                    "contentBlockIndex": block,
                    "start": {"toolUse": {"toolUseId": tool_id, "name": "get_weather"}},
                },
            )
        )
        frames.extend(
            event(
                "contentBlockDelta",
                {"contentBlockIndex": block, "delta": {"toolUse": {"input": piece}}},
            )
            for piece in ['{"loca', 'tion": "', city, '"}']
        )
        frames.append(event("contentBlockStop", {"contentBlockIndex": block}))
    frames.append(event("messageStop", {"stopReason": "tool_use"}))
    chunks = run_stream(frames, include_usage=False)
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas(chunks):
        for call in delta.get("tool_calls", ()):
            entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.get("id", "")
            entry["name"] += call.get("function", {}).get("name", "")
            entry["arguments"] += call.get("function", {}).get("arguments", "")
    assert calls == {
        0: {"id": "tooluse_a", "name": "get_weather", "arguments": '{"location": "Paris"}'},
        1: {"id": "tooluse_b", "name": "get_weather", "arguments": '{"location": "Tokyo"}'},
    }
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_forced_answer_tool_streams_as_content() -> None:
    chunks = run_stream(
        [
            event("messageStart", {"role": "assistant"}),
            event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": "t", "name": "answer_as_x"}},
                },
            ),
            event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"a":'}}},
            ),
            event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": "1}"}}}
            ),
            event("messageStop", {"stopReason": "tool_use"}),
        ],
        include_usage=False,
    )
    assert "".join(d.get("content", "") for d in deltas(chunks)) == '{"a":1}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_stream_without_message_stop_fails() -> None:
    translator = provider().chat_stream(model="m", include_usage=False)
    translator.feed(StreamEvent("messageStart", b'{"role":"assistant"}'))
    with pytest.raises(ProviderStreamError) as caught:
        translator.finish()
    assert caught.value.failure.status == 502


def test_an_exception_event_fed_to_the_translator_fails() -> None:
    translator = provider().chat_stream(model="m", include_usage=False)
    with pytest.raises(ProviderStreamError) as caught:
        translator.feed(StreamEvent("throttlingException", b'{"message":"slow down"}'))
    assert caught.value.failure.status == 429


# --- embeddings


def test_titan_embeddings() -> None:
    p = provider()
    call = p.embeddings_call(
        {"model": "amazon.titan-embed-text-v2:0", "input": "hello", "dimensions": 256}
    )
    assert call.path == "/model/amazon.titan-embed-text-v2:0/invoke"
    assert orjson.loads(call.body or b"") == {"inputText": "hello", "dimensions": 256}
    result = p.embeddings_answer(b'{"embedding":[0.5,-0.25],"inputTextTokenCount":2}', model="e")
    assert result == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
        "model": "e",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    with pytest.raises(UnsupportedParameter) as caught:
        p.embeddings_call({"model": "e", "input": ["a", "b"]})
    assert caught.value.param == "input"
    calls = p.embeddings_calls({"model": "e", "input": ["a", "b"], "encoding_format": "base64"})
    assert [orjson.loads(c.body or b"") for c in calls] == [{"inputText": "a"}, {"inputText": "b"}]
    merged = p.embeddings_merge(
        [
            b'{"embedding":[1.0],"inputTextTokenCount":1}',
            b'{"embedding":[2.0],"inputTextTokenCount":1}',
        ],
        model="e",
    )
    assert [d["embedding"] for d in merged["data"]] == [[1.0], [2.0]]
    assert merged["usage"]["prompt_tokens"] == 2


# --- errors


@pytest.mark.parametrize(
    ("status", "kind", "expected_status", "error_type"),
    [
        (429, "ThrottlingException", 429, "rate_limit_error"),
        (403, "AccessDeniedException", 403, "permission_error"),
        (403, "UnrecognizedClientException", 401, "authentication_error"),
        (404, "ResourceNotFoundException", 404, "not_found_error"),
        (400, "ValidationException", 400, "invalid_request_error"),
        (503, "ServiceUnavailableException", 503, "server_error"),
        (408, "ModelTimeoutException", 504, "upstream_error"),
        (500, "InternalServerException", 502, "upstream_error"),
        (424, "ModelErrorException", 502, "upstream_error"),
        (413, "", 413, "invalid_request_error"),
        (418, "", 418, "invalid_request_error"),
        (500, "", 502, "upstream_error"),
    ],
)
def test_http_errors(status: int, kind: str, expected_status: int, error_type: str) -> None:
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": "req-1"}
    if kind:
        headers["x-amzn-ErrorType"] = f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    failure = provider().failure(
        status, headers, b'{"message":"Something about arn:aws:iam::123456789012:user/x"}'
    )
    assert (failure.status, failure.type) == (expected_status, error_type)
    assert ("x-amzn-requestid", "req-1") in failure.headers
    if expected_status in (401, 403):
        assert "123456789012" not in failure.message  # AWS's text names accounts and roles
    else:
        assert failure.message.startswith("Something about")


def test_error_kind_from_the_body_and_retry_after() -> None:
    failure = provider().failure(
        400,
        {"Retry-After": "7"},
        b'{"__type":"com.amazon.coral#ThrottlingException","message":"slow"}',
    )
    assert (failure.status, failure.message) == (429, "slow")
    assert ("retry-after", "7") in failure.headers


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": 7}]}, "messages"),
        ({"messages": ["hello"]}, "messages"),
        ({"messages": [{"role": "user", "content": [7]}]}, "messages"),
        ({"messages": [{"role": "assistant", "tool_calls": [1]}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": ["x"]}, "tools"),
        (
            {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER], "tool_choice": {}},
            "tool_choice",
        ),
        ({"messages": []}, "messages"),
    ],
)
def test_malformed_requests_are_refused_not_failed(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        converse(body)
    assert caught.value.param == param


def test_a_conversation_left_empty_by_drops_is_refused() -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        converse({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, policy="drop")
    assert caught.value.param == "messages"
