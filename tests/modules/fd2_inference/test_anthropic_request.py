"""OpenAI chat bodies -> Anthropic Messages API calls (providers/anthropic_request.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fd2.serving.errors import BadRequest
from fd2_inference.providers.anthropic import AnthropicProvider
from fd2_inference.providers.base import ParamPolicy, ProviderSettings, UnsupportedParameter


def _provider(
    api_key: str | None, policy: ParamPolicy = "refuse", **options: Any
) -> AnthropicProvider:
    settings = ProviderSettings(
        name="anthropic",
        base_url="https://api.anthropic.com",
        api_key=api_key,
        unsupported_params=policy,
        options=options,
    )
    return AnthropicProvider(settings)


def _call(body: dict[str, Any], *, stream: bool = False, policy: ParamPolicy = "refuse") -> Any:
    provider = _provider("sk-ant-test", policy)
    return provider.chat_call(body, stream=stream)


def _sent(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    call = _call(body, **kwargs)
    assert call.body is not None
    return orjson.loads(call.body)  # type: ignore[no-any-return]


def test_plain_call_headers_path_and_body() -> None:
    call = _call({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}]})
    assert (call.method, call.path, call.stream) == ("POST", "/v1/messages", False)
    headers = dict(call.headers)
    assert headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert orjson.loads(call.body) == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_no_key_sends_no_key_header_and_repr_hides_it() -> None:
    provider = _provider(None)
    call = provider.chat_call(
        {"model": "m", "messages": [{"role": "user", "content": "x"}]}, stream=True
    )
    assert "x-api-key" not in dict(call.headers)
    assert dict(call.headers)["accept"] == "text/event-stream"
    assert orjson.loads(call.body or b"")["stream"] is True
    assert "sk-" not in repr(_provider("sk-ant-secret"))


def test_system_and_developer_split_out_and_max_tokens() -> None:
    sent = _sent(
        {
            "model": "m",
            "max_tokens": 50,
            "max_completion_tokens": 70,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "Hi"},
            ],
        }
    )
    assert sent["max_tokens"] == 70
    assert sent["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    one = _sent(
        {
            "model": "m",
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"}],
        }
    )
    assert one["system"] == "S"
    assert _provider(None, default_max_tokens="99").chat_call(
        {"model": "m", "messages": [{"role": "user", "content": "u"}]}, stream=False
    ).body == orjson.dumps(
        {"model": "m", "max_tokens": 99, "messages": [{"role": "user", "content": "u"}]}
    )


def test_tools_choice_and_tool_round_trip() -> None:
    sent = _sent(
        {
            "model": "m",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather of a city",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                        "strict": True,
                    },
                },
                {"type": "function", "function": {"name": "now"}},
            ],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {
                    "role": "tool",
                    "tool_call_id": "call_2",
                    "content": [{"type": "text", "text": "21C"}],
                },
                {"role": "user", "content": "Thanks"},
            ],
        }
    )
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "21C"}],
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice_mapping(choice: object, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    sent = _sent(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "u"}],
            "tools": tools,
            "tool_choice": choice,
        }
    )
    assert sent["tool_choice"] == expected


def test_images_url_and_base64() -> None:
    sent = _sent(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://example.com/a.png", "detail": "high"},
                        },
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                        },
                    ],
                }
            ],
        }
    )
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
    ]
    with pytest.raises(BadRequest):
        _call(
            {
                "model": "m",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}
                        ],
                    }
                ],
            }
        )


def test_sampling_stop_user_and_json_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    sent = _sent(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "u"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": "END",
            "n": 1,
            "user": "u-42",
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": schema, "strict": True},
            },
        }
    )
    assert sent["temperature"] == 0.2
    assert sent["top_p"] == 0.9
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "u-42"}
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "n" not in sent
    assert _sent(
        {"model": "m", "messages": [{"role": "user", "content": "u"}], "stop": ["a", "b"]}
    )["stop_sequences"] == ["a", "b"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 1.5}, "temperature"),
        (
            {
                "response_format": {"type": "json_object"},
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
            "response_format",
        ),
        ({"logprobs": True}, "logprobs"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            "messages",
        ),
    ],
)
def test_unsupported_refused_or_dropped(extra: dict[str, Any], param: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "u"}], **extra}
    with pytest.raises(UnsupportedParameter) as caught:
        _call(body)
    assert caught.value.param == param
    assert "anthropic" in str(caught.value)
    sent = _sent(body, policy="drop")
    assert _call(body, policy="drop").dropped == (param,)
    assert param not in sent or param == "messages"
    assert "output_config" not in sent


@pytest.mark.parametrize(
    "body",
    [
        {"messages": [{"role": "user", "content": "u"}]},
        {"model": "m", "messages": []},
        {"model": "m", "messages": [{"role": "user", "content": "u"}], "max_tokens": 0},
        {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
        {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
                }
            ],
        },
    ],
)
def test_malformed_requests_are_400(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        _call(body)


def test_json_object_is_a_forced_tool() -> None:
    sent = _sent(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "u"}],
            "response_format": {"type": "json_object"},
        }
    )
    assert sent["tools"] == [
        {
            "name": "fd2_json_object",
            "description": "Give the whole answer as this tool's input: one JSON object.",
            "input_schema": {"type": "object"},
        }
    ]
    assert sent["tool_choice"] == {"type": "tool", "name": "fd2_json_object"}
