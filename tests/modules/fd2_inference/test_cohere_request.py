"""Cohere v2: the call fd2 sends for an OpenAI chat or embeddings request, built exactly."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.serving.errors import BadRequest, ConfigError
from fd2_inference.providers.base import ProviderSettings, UnsupportedParameter
from fd2_inference.providers.cohere import CohereProvider

KEY = "co-test-cohere-key-0001"
PROVIDER = CohereProvider(ProviderSettings(name="cohere", base_url="", api_key=KEY))
DROPPING = CohereProvider(
    ProviderSettings(name="cohere", base_url="", api_key=KEY, unsupported_params="drop")
)
MODEL = "command-a-03-2025"
USER = {"role": "user", "content": "Hi"}


def sent(body: dict[str, Any], *, stream: bool = False, provider: CohereProvider = PROVIDER) -> Any:
    call = provider.chat_call({"model": MODEL, **body}, stream=stream)
    assert call.body is not None
    return orjson.loads(call.body)


def test_plain_chat_call() -> None:
    call = PROVIDER.chat_call({"model": MODEL, "messages": [USER]}, stream=False)
    assert (call.method, call.path, call.stream) == ("POST", "/v2/chat", False)
    assert dict(call.headers) == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": f"Bearer {KEY}",
    }
    assert orjson.loads(call.body or b"") == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert KEY not in repr(PROVIDER)


def test_stream_call() -> None:
    call = PROVIDER.chat_call({"model": MODEL, "messages": [USER], "stream": True}, stream=True)
    assert call.stream is True
    assert dict(call.headers)["accept"] == "text/event-stream"
    assert orjson.loads(call.body or b"")["stream"] is True


def test_missing_model_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as err:
        PROVIDER.chat_call({"messages": [USER]}, stream=False)
    assert err.value.param == "model"


def test_sampling_and_limits() -> None:
    body = sent(
        {
            "messages": [USER],
            "temperature": 0.3,
            "top_p": 0.75,
            "max_tokens": 50,
            "max_completion_tokens": 64,
            "stop": ["\n\n", "END"],
            "seed": 3,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "n": 1,
            "user": "u",
            "stream_options": {"include_usage": True},
        }
    )
    assert body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.3,
        "p": 0.75,
        "seed": 3,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "max_tokens": 64,
        "stop_sequences": ["\n\n", "END"],
    }
    assert sent({"messages": [USER], "stop": "END"})["stop_sequences"] == ["END"]


def test_roles_and_images() -> None:
    body = sent(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                },
                {"role": "assistant", "content": [{"type": "text", "text": "Un chat."}]},
            ]
        }
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        {"role": "assistant", "content": "Un chat."},
    ]


def test_audio_is_refused_or_dropped() -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Listen"},
            {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
        ],
    }
    with pytest.raises(UnsupportedParameter) as err:
        sent({"messages": [message]})
    assert err.value.param == "messages[0].content[1]"
    assert sent({"messages": [message]}, provider=DROPPING)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Listen"}]}
    ]


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
NOW = {
    "type": "function",
    "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
}


def test_tools() -> None:
    body = sent({"messages": [USER], "tools": [WEATHER, NOW]})
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        },
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert "strict_tools" not in body  # one of the two tools did not ask for strict
    assert "tool_choice" not in body
    assert sent({"messages": [USER], "tools": [WEATHER]})["strict_tools"] is True


@pytest.mark.parametrize(
    ("choice", "sent_choice"), [("auto", None), ("required", "REQUIRED"), ("none", "NONE")]
)
def test_tool_choice(choice: str, sent_choice: str | None) -> None:
    body = sent({"messages": [USER], "tools": [WEATHER, NOW], "tool_choice": choice})
    assert body.get("tool_choice") == sent_choice
    assert len(body["tools"]) == 2


def test_named_tool_choice_offers_only_that_tool() -> None:
    body = sent(
        {
            "messages": [USER],
            "tools": [WEATHER, NOW],
            "tool_choice": {"type": "function", "function": {"name": "now"}},
        }
    )
    assert body["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in body["tools"]] == ["now"]
    with pytest.raises(BadRequest):
        sent(
            {
                "messages": [USER],
                "tools": [NOW],
                "tool_choice": {"type": "function", "function": {"name": "x"}},
            }
        )


def test_tool_round_trip() -> None:
    body = sent(
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": "I will look it up.",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "now", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
                {
                    "role": "tool",
                    "tool_call_id": "c2",
                    "content": [{"type": "text", "text": "12:00"}],
                },
            ]
        }
    )
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
            ],
            "tool_plan": "I will look it up.",
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "c2", "content": "12:00"},
    ]


def test_response_formats() -> None:
    assert sent({"messages": [USER], "response_format": {"type": "json_object"}})[
        "response_format"
    ] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    body = sent(
        {
            "messages": [USER],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        }
    )
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}
    assert "response_format" not in sent({"messages": [USER], "response_format": {"type": "text"}})


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"1": 1}}, "logit_bias"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ],
)
def test_what_cohere_cannot_honour_is_refused(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as err:
        sent({"messages": [USER], **extra})
    assert err.value.param == param


def test_drop_policy() -> None:
    body = sent({"messages": [USER], "n": 3, "logprobs": True}, provider=DROPPING)
    assert body == {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}


def test_embeddings_call() -> None:
    call = PROVIDER.embeddings_call(
        {"model": "embed-v4.0", "input": "hello", "dimensions": 512, "encoding_format": "float"}
    )
    assert (call.method, call.path) == ("POST", "/v2/embed")
    assert dict(call.headers)["authorization"] == f"Bearer {KEY}"
    assert orjson.loads(call.body or b"") == {
        "model": "embed-v4.0",
        "texts": ["hello"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "truncate": "NONE",
        "output_dimension": 512,
    }
    query = CohereProvider(
        ProviderSettings(name="cohere", base_url="", options={"input_type": "search_query"})
    )
    call = query.embeddings_call({"model": "embed-v4.0", "input": ["a", "b"]})
    assert "authorization" not in dict(call.headers)
    assert orjson.loads(call.body or b"")["input_type"] == "search_query"
    assert orjson.loads(call.body or b"")["texts"] == ["a", "b"]


def test_token_array_embeddings_are_refused() -> None:
    with pytest.raises(UnsupportedParameter) as err:
        PROVIDER.embeddings_call({"model": "embed-v4.0", "input": [1, 2]})
    assert err.value.param == "input"


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        CohereProvider(ProviderSettings(name="cohere", base_url="", options={"input_type": "x"}))


def test_dropped_parameters_are_named_on_the_call() -> None:
    call = DROPPING.chat_call(
        {"model": MODEL, "messages": [USER], "n": 3, "logprobs": True}, stream=False
    )
    assert call.dropped == ("logprobs", "n")
    assert PROVIDER.chat_call({"model": MODEL, "messages": [USER]}, stream=False).dropped == ()


_words = st.sampled_from(
    ["user", "assistant", "tool", "system", "text", "image_url", "function", "auto", "object"]
)
_keys = st.sampled_from(
    [
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "tool_calls",
        "id",
        "function",
        "name",
        "arguments",
        "tool_call_id",
        "schema",
        "json_schema",
        "properties",
        "items",
        "$ref",
        "anyOf",
        "enum",
        "parameters",
    ]
)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4) | _words,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)
_bodies = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": _values},
    optional={"tools": _values, "tool_choice": _values, "response_format": _values, "n": _values},
)


@given(_bodies, st.booleans(), st.booleans())
def test_any_body_is_a_call_or_a_400(body: dict[str, Any], stream: bool, drop: bool) -> None:
    """Whatever a client sends, the call is built or refused with a 400, never a crash."""
    with contextlib.suppress(BadRequest, UnsupportedParameter):
        (DROPPING if drop else PROVIDER).chat_call(body, stream=stream)


@pytest.mark.parametrize(("top_p", "p"), [(1, 0.99), (1.0, 0.99), (0.5, 0.5), (0, 0.01)])
def test_top_p_within_cohere_range(top_p: float, p: float) -> None:
    assert sent({"messages": [USER], "top_p": top_p})["p"] == p
