"""The conformance table: what a client sends through the `openai` SDK and what it must see,
whatever provider serves it. Transcripts (`transcripts/<provider>/<scenario>.json`) say what
each provider is sent and answers; see README.md.

Every answer carries the same content for every provider, so one check fits all: a provider's
transcript answers with the text, tool calls and token counts below, in its own wire format.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import openai

MODEL = "test-model"
EMBEDDING_MODEL = "test-embedding-model"

SYSTEM = "You are a terse assistant."
QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris."
"""The text of every plain and streamed answer (Paris: streams split it across chunks)."""
PROMPT_TOKENS = 14
COMPLETION_TOKENS = 8
MAX_TOKENS = 50

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City name"}},
            "required": ["location"],
        },
    },
}
CAPITAL_SCHEMA: dict[str, Any] = {
    "name": "capital",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"country": {"type": "string"}, "capital": {"type": "string"}},
        "required": ["country", "capital"],
        "additionalProperties": False,
    },
}
# A 1x1 red PNG.
RED_PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5E"
    "rkJggg=="
)
VISION_ANSWER = "A single red pixel."
EMBEDDINGS = ([0.125, -0.25, 0.5], [0.75, 0.0625, -1.0])
"""Exact in float32, so a base64 answer decodes to these very values."""
EMBEDDING_TOKENS = 4
USAGE = {"prompt_tokens": 2006, "completion_tokens": 300, "cached_tokens": 1920}
CUT_PREFIX = "The capital"
"""What a client of `stream_cut` has read when the stream breaks: the transcript streams it,
then a fragment of an event, then the connection drops."""


def messages() -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


@dataclass(frozen=True)
class Expected:
    """An error a scenario expects: status, SDK exception, and headers to pass through."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    call: Callable[[openai.OpenAI], Any]
    """The SDK call; its result (a completion, the list of chunks, embeddings) goes to check."""
    check: Callable[[Any, str], None]
    """Asserts on the SDK-visible result; the second argument is the provider's name."""
    refused: Mapping[str, str] = field(default_factory=dict)
    """provider -> the parameter it must refuse with a 400 (`param`), without an upstream call."""
    error: Expected | None = None


# --- calls


def _plain(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model=MODEL, messages=messages(), max_tokens=MAX_TOKENS)  # type: ignore[arg-type]


def _stream(client: openai.OpenAI) -> list[Any]:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=messages(),  # type: ignore[arg-type]
        max_tokens=MAX_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    return list(stream)


def _weather(question: str, *, stream: bool) -> Callable[[openai.OpenAI], Any]:
    def call(client: openai.OpenAI) -> Any:
        result = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": question}],
            max_tokens=MAX_TOKENS,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice="auto",
            stream=stream,
        )
        return list(result) if stream else result  # type: ignore[arg-type]

    return call


def _json_schema(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=MAX_TOKENS,
        response_format={"type": "json_schema", "json_schema": CAPITAL_SCHEMA},  # type: ignore[typeddict-item]
    )


def _vision(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{RED_PIXEL_PNG}"},
                    },
                ],
            }
        ],
    )


def _embeddings(client: openai.OpenAI) -> Any:
    # The SDK asks for base64 unless told otherwise (and decodes it): what most clients send.
    return client.embeddings.create(model=EMBEDDING_MODEL, input=["hello", "world"])


# --- checks


def _assert_answer(completion: Any, content: str, finish: str = "stop") -> None:
    assert completion.object == "chat.completion"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == content
    assert choice.finish_reason == finish


def _check_plain(completion: Any, provider: str) -> None:
    _assert_answer(completion, ANSWER)
    assert completion.usage.prompt_tokens == PROMPT_TOKENS
    assert completion.usage.completion_tokens == COMPLETION_TOKENS
    assert completion.usage.total_tokens == PROMPT_TOKENS + COMPLETION_TOKENS


def _streamed(chunks: list[Any]) -> tuple[str, str | None, dict[int, dict[str, str]], Any]:
    """The text, finish reason, tool calls by index, and usage of a list of chunks, checking
    OpenAI's chunking rules on the way (one choice of index 0; usage only on the last chunk)."""
    text, finish, tools, usage = "", None, dict[int, dict[str, str]](), None
    for position, chunk in enumerate(chunks):
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            assert position == len(chunks) - 1, "usage comes in the last chunk"
            usage = chunk.usage
        for choice in chunk.choices:
            assert choice.index == 0
            delta = choice.delta
            text += delta.content or ""
            for call in delta.tool_calls or ():
                entry = tools.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                if call.id:
                    assert not entry["id"], "a tool call's id comes once, in its first delta"
                    entry["id"] = call.id
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    return text, finish, tools, usage


def _check_stream(chunks: list[Any], provider: str) -> None:
    text, finish, tools, usage = _streamed(chunks)
    assert text == ANSWER
    assert finish == "stop"
    assert not tools
    assert usage is not None, "include_usage asked for a usage chunk"
    assert usage.prompt_tokens == PROMPT_TOKENS
    assert usage.completion_tokens == COMPLETION_TOKENS
    assert chunks[-1].choices == []


def _check_tool_call(completion: Any, provider: str) -> None:
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"location": "Paris"}


def _check_stream_tool_call(chunks: list[Any], provider: str) -> None:
    _text, finish, tools, _usage = _streamed(chunks)
    assert finish == "tool_calls"
    assert sorted(tools) == [0]
    assert tools[0]["id"]
    assert tools[0]["name"] == "get_weather"
    assert json.loads(tools[0]["arguments"]) == {"location": "Paris"}


def _check_parallel(chunks: list[Any], provider: str) -> None:
    _text, finish, tools, _usage = _streamed(chunks)
    assert finish == "tool_calls"
    assert sorted(tools) == [0, 1]
    assert tools[0]["id"] and tools[1]["id"] and tools[0]["id"] != tools[1]["id"]
    assert [tools[i]["name"] for i in (0, 1)] == ["get_weather", "get_weather"]
    assert [json.loads(tools[i]["arguments"]) for i in (0, 1)] == [
        {"location": "Paris"},
        {"location": "Tokyo"},
    ]


def _check_json_schema(completion: Any, provider: str) -> None:
    assert completion.choices[0].finish_reason == "stop"
    assert json.loads(completion.choices[0].message.content) == {
        "country": "France",
        "capital": "Paris",
    }


def _check_vision(completion: Any, provider: str) -> None:
    _assert_answer(completion, VISION_ANSWER)


def _check_embeddings(result: Any, provider: str) -> None:
    assert result.object == "list"
    assert [item.index for item in result.data] == [0, 1]
    assert [list(item.embedding) for item in result.data] == [list(v) for v in EMBEDDINGS]
    assert result.usage.prompt_tokens == EMBEDDING_TOKENS


NO_CACHED_TOKENS: frozenset[str] = frozenset({"cohere"})
"""Providers whose answers report no cached prompt tokens."""


def _check_usage(completion: Any, provider: str) -> None:
    _assert_answer(completion, ANSWER)
    usage = completion.usage
    assert usage.prompt_tokens == USAGE["prompt_tokens"]
    assert usage.completion_tokens == USAGE["completion_tokens"]
    assert usage.total_tokens == USAGE["prompt_tokens"] + USAGE["completion_tokens"]
    if provider not in NO_CACHED_TOKENS:
        assert usage.prompt_tokens_details.cached_tokens == USAGE["cached_tokens"]


def _stream_until_broken(client: openai.OpenAI) -> Any:
    received = ""
    try:
        for chunk in _stream_lazy(client):
            for choice in chunk.choices:
                received += choice.delta.content or ""
    except openai.APIError as exc:
        return received, exc
    return received, None


def _stream_lazy(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=MODEL,
        messages=messages(),  # type: ignore[arg-type]
        max_tokens=MAX_TOKENS,
        stream=True,
    )


def _check_cut(result: Any, provider: str) -> None:
    received, error = result
    assert received == CUT_PREFIX
    assert error is not None, "a stream cut mid-event ends with an error the SDK raises"


def _unused(result: Any, provider: str) -> None:
    raise AssertionError("an error scenario has no result to check")


def embedding_floats(encoded: str) -> list[float]:
    """A base64 embedding (little-endian float32) as floats (for transcripts' authors)."""
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def _error(name: str, expected: Expected) -> Scenario:
    return Scenario(name, _plain, _unused, error=expected)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("plain", _plain, _check_plain),
    Scenario("stream", _stream, _check_stream),
    Scenario(
        "tool_call", _weather("What is the weather in Paris?", stream=False), _check_tool_call
    ),
    Scenario(
        "stream_tool_call",
        _weather("What is the weather in Paris?", stream=True),
        _check_stream_tool_call,
    ),
    Scenario(
        "parallel_tool_calls",
        _weather("What is the weather in Paris and in Tokyo?", stream=True),
        _check_parallel,
    ),
    Scenario("json_schema", _json_schema, _check_json_schema),
    Scenario("vision", _vision, _check_vision),
    Scenario(
        "embeddings",
        _embeddings,
        _check_embeddings,
        refused={"anthropic": "input"},
    ),
    Scenario("usage", _plain, _check_usage),
    Scenario("stream_cut", _stream_until_broken, _check_cut),
    _error("error_400", Expected(400)),
    _error("error_401", Expected(401)),
    _error("error_403", Expected(403)),
    _error("error_404", Expected(404)),
    _error("error_413", Expected(413)),
    _error("error_429", Expected(429, headers={"retry-after": "7"})),
    _error("error_overloaded", Expected(503)),
    _error("error_5xx", Expected(502)),
)

BY_NAME: dict[str, Scenario] = {scenario.name: scenario for scenario in SCENARIOS}
