"""Gemini: the call fd2 sends for an OpenAI chat or embeddings request, built exactly."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.serving.errors import BadRequest, ConfigError
from fd2_inference.providers.base import ProviderSettings, UnsupportedParameter
from fd2_inference.providers.gemini import GeminiProvider
from fd2_inference.providers.gemini_ids import new_call_id

KEY = "AIzaSy-test-gemini-key-0001"
PROVIDER = GeminiProvider(ProviderSettings(name="gemini", base_url="", api_key=KEY))
DROPPING = GeminiProvider(
    ProviderSettings(name="gemini", base_url="", api_key=KEY, unsupported_params="drop")
)
USER = {"role": "user", "content": "Hi"}


def sent(body: dict[str, Any], *, stream: bool = False, provider: GeminiProvider = PROVIDER) -> Any:
    call = provider.chat_call(body, stream=stream)
    assert call.body is not None
    return orjson.loads(call.body)


def test_plain_chat_call() -> None:
    call = PROVIDER.chat_call({"model": "gemini-2.5-flash", "messages": [USER]}, stream=False)
    assert call.method == "POST"
    assert call.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert dict(call.headers) == {"content-type": "application/json", "x-goog-api-key": KEY}
    assert call.stream is False
    assert orjson.loads(call.body or b"") == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]
    }


def test_stream_call_asks_for_sse() -> None:
    call = PROVIDER.chat_call({"model": "models/gemini-2.5-flash", "messages": [USER]}, stream=True)
    assert call.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert call.stream is True


@pytest.mark.parametrize("model", ["../files", "gemini?key=x", "a/b", "", None, "x" * 200])
def test_model_cannot_change_the_path(model: Any) -> None:
    with pytest.raises(BadRequest) as err:
        PROVIDER.chat_call({"model": model, "messages": [USER]}, stream=False)
    assert err.value.param == "model"


def test_key_is_not_in_the_repr() -> None:
    assert KEY not in repr(PROVIDER)


def test_system_and_developer_become_system_instruction() -> None:
    body = sent(
        {
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                USER,
                {"role": "assistant", "content": "Salut"},
                {"role": "user", "content": "Encore"},
            ],
        }
    )
    assert body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Salut"}]},
            {"role": "user", "parts": [{"text": "Encore"}]},
        ],
    }


def test_generation_config() -> None:
    body = sent(
        {
            "model": "gemini-2.5-flash",
            "messages": [USER],
            "temperature": 0.3,
            "top_p": 0.8,
            "max_tokens": 50,
            "max_completion_tokens": 60,
            "stop": "END",
            "n": 2,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
            "seed": 7,
            "user": "u-1",
            "stream_options": {"include_usage": True},
        }
    )
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.8,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "seed": 7,
        "maxOutputTokens": 60,
        "stopSequences": ["END"],
        "candidateCount": 2,
    }


def test_n_of_one_and_nulls_send_nothing() -> None:
    body = sent({"model": "g", "messages": [USER], "n": 1, "temperature": None, "logprobs": None})
    assert "generationConfig" not in body


def test_images_inline_and_files_api() -> None:
    file_uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123"
    body = sent(
        {
            "model": "gemini-2.5-flash",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                        },
                        {"type": "image_url", "image_url": {"url": file_uri, "detail": "auto"}},
                        {
                            "type": "input_audio",
                            "input_audio": {"data": "UklGRg==", "format": "wav"},
                        },
                    ],
                }
            ],
        }
    )
    assert body["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": file_uri}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


def test_web_image_url_is_refused_or_dropped() -> None:
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ],
    }
    with pytest.raises(UnsupportedParameter) as err:
        sent({"model": "g", "messages": [message]})
    assert err.value.param == "messages[0].content[1].image_url.url"
    body = sent({"model": "g", "messages": [message]}, provider=DROPPING)
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Describe"}]}]


def test_image_in_system_message_is_refused() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
    with pytest.raises(UnsupportedParameter) as err:
        sent({"model": "g", "messages": [{"role": "system", "content": [image]}, USER]})
    assert err.value.param == "messages[0].content[0]"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
NOW = {
    "type": "function",
    "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
}


def test_tools_and_tool_choice() -> None:
    body = sent(
        {"model": "g", "messages": [USER], "tools": [WEATHER, NOW], "tool_choice": "required"}
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING", "description": "City name"},
                            "unit": {
                                "type": "STRING",
                                "enum": ["c", "f"],
                                "format": "enum",
                                "nullable": True,
                            },
                        },
                        "propertyOrdering": ["city", "unit"],
                        "required": ["city", "unit"],
                    },
                },
                {"name": "now"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "now"}},
            {"mode": "ANY", "allowedFunctionNames": ["now"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body = sent({"model": "g", "messages": [USER], "tools": [NOW], "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_parallel_tool_calls_false_is_refused() -> None:
    with pytest.raises(UnsupportedParameter) as err:
        sent({"model": "g", "messages": [USER], "tools": [NOW], "parallel_tool_calls": False})
    assert err.value.param == "parallel_tool_calls"
    assert "toolConfig" not in sent(
        {"model": "g", "messages": [USER], "tools": [NOW], "parallel_tool_calls": True}
    )


def test_tool_round_trip_with_thought_signature() -> None:
    signed = new_call_id("c2lnbmF0dXJl")
    plain = new_call_id()
    body = sent(
        {
            "model": "g",
            "messages": [
                {"role": "user", "content": "Weather in Paris and the time?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": signed,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": plain,
                            "type": "function",
                            "function": {"name": "now", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": signed, "content": '{"temp": 21}'},
                {"role": "tool", "tool_call_id": plain, "content": "12:00"},
            ],
        }
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and the time?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "c2lnbmF0dXJl",
                },
                {"functionCall": {"name": "now", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "now", "response": {"output": "12:00"}}},
            ],
        },
    ]


def test_tool_result_for_an_unknown_call_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as err:
        sent(
            {
                "model": "g",
                "messages": [USER, {"role": "tool", "tool_call_id": "x", "content": "1"}],
            }
        )
    assert err.value.param == "messages[1].tool_call_id"


def test_bad_tool_arguments_are_a_bad_request() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "[1]"}}
    with pytest.raises(BadRequest) as err:
        sent({"model": "g", "messages": [USER, {"role": "assistant", "tool_calls": [call]}]})
    assert err.value.param == "messages[1].tool_calls[0].function.arguments"


@pytest.mark.parametrize("param", ["logprobs", "logit_bias", "reasoning_effort", "audio", "store"])
def test_parameters_gemini_lacks_are_refused_by_name(param: str) -> None:
    with pytest.raises(UnsupportedParameter) as err:
        sent({"model": "g", "messages": [USER], param: True})
    assert err.value.param == param


def test_embeddings_one_and_many() -> None:
    call = PROVIDER.embeddings_call(
        {"model": "text-embedding-004", "input": "hello", "dimensions": 256}
    )
    assert call.path == "/v1beta/models/text-embedding-004:embedContent"
    assert dict(call.headers)["x-goog-api-key"] == KEY
    assert orjson.loads(call.body or b"") == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "hello"}]},
        "outputDimensionality": 256,
    }
    tasked = GeminiProvider(
        ProviderSettings(
            name="gemini", base_url="", options={"embedding_task_type": "RETRIEVAL_DOCUMENT"}
        )
    )
    call = tasked.embeddings_call(
        {"model": "text-embedding-004", "input": ["a", "b"], "encoding_format": "float"}
    )
    assert call.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert dict(call.headers) == {"content-type": "application/json"}
    assert orjson.loads(call.body or b"") == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": t}]},
                "taskType": "RETRIEVAL_DOCUMENT",
            }
            for t in ("a", "b")
        ]
    }


def test_token_array_embeddings_are_refused() -> None:
    with pytest.raises(UnsupportedParameter) as err:
        PROVIDER.embeddings_call({"model": "text-embedding-004", "input": [[1, 2, 3]]})
    assert err.value.param == "input"


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        GeminiProvider(
            ProviderSettings(name="gemini", base_url="", options={"embedding_task_type": 3})
        )


def test_foreign_tool_calls_get_the_bypass_signature_when_asked() -> None:
    signed = new_call_id("U0lH")
    history = [
        USER,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "now", "arguments": "{}"},
                },
                {
                    "id": "call_def",
                    "type": "function",
                    "function": {"name": "now", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "1"},
        {"role": "tool", "tool_call_id": "call_def", "content": "2"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": signed, "type": "function", "function": {"name": "now", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": signed, "content": "3"},
    ]
    plain = sent({"model": "g", "messages": history})
    assert "thoughtSignature" not in plain["contents"][1]["parts"][0]
    signing = GeminiProvider(
        ProviderSettings(
            name="gemini", base_url="", options={"skip_thought_signature_validation": True}
        )
    )
    body = sent({"model": "g", "messages": history}, provider=signing)
    first, second = body["contents"][1]["parts"]
    assert first["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in second
    assert body["contents"][3]["parts"][0]["thoughtSignature"] == "U0lH"


def test_dropped_parameters_are_named_on_the_call() -> None:
    schema = {"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}
    call = DROPPING.chat_call(
        {
            "model": "g",
            "messages": [USER],
            "logit_bias": {"1": 2},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        },
        stream=False,
    )
    assert call.dropped == ("logit_bias", "response_format.json_schema.schema")
    assert PROVIDER.chat_call({"model": "g", "messages": [USER]}, stream=False).dropped == ()
    call = DROPPING.embeddings_call({"model": "e", "input": "x", "user_tag": 1})
    assert call.dropped == ("user_tag",)


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
