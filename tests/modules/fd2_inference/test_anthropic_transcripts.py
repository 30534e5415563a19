"""The Anthropic conformance transcripts, replayed against the provider alone (no I/O).

The conformance suite (tests/conformance) runs them end to end through fd2 and the `openai`
SDK; this test pins the pure half: for each scenario's OpenAI request the provider builds
exactly the recorded call, and the recorded answer (streams cut into 7-byte pieces and framed by
the native SSE decoder) translates to what the scenario expects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from fd2.serving.sse import SseDecoder
from fd2_inference.providers.anthropic import AnthropicProvider
from fd2_inference.providers.base import ProviderSettings, ProviderStreamError, StreamEvent

TRANSCRIPTS = Path(__file__).parents[2] / "conformance" / "transcripts" / "anthropic"
SYSTEM = {"role": "system", "content": "You are a terse assistant."}
QUESTION = {"role": "user", "content": "What is the capital of France?"}
ANSWER = "The capital of France is Paris."
WEATHER = {
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
RED_PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5E"
    "rkJggg=="
)
PLAIN = {"model": "test-model", "messages": [SYSTEM, QUESTION], "max_tokens": 50}


def _weather(question: str) -> dict[str, Any]:
    return {
        "model": "test-model",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 50,
        "tools": [WEATHER],
        "tool_choice": "auto",
    }


# scenario -> (the OpenAI body the SDK sends, stream)
REQUESTS: dict[str, tuple[dict[str, Any], bool]] = {
    "plain": (PLAIN, False),
    "usage": (PLAIN, False),
    "stream": ({**PLAIN, "stream": True, "stream_options": {"include_usage": True}}, True),
    "stream_cut": ({**PLAIN, "stream": True}, True),
    "tool_call": (_weather("What is the weather in Paris?"), False),
    "stream_tool_call": ({**_weather("What is the weather in Paris?"), "stream": True}, True),
    "parallel_tool_calls": (
        {**_weather("What is the weather in Paris and in Tokyo?"), "stream": True},
        True,
    ),
    "json_schema": (
        {
            "model": "test-model",
            "messages": [QUESTION],
            "max_tokens": 50,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "capital",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {
                            "country": {"type": "string"},
                            "capital": {"type": "string"},
                        },
                        "required": ["country", "capital"],
                        "additionalProperties": False,
                    },
                },
            },
        },
        False,
    ),
    "vision": (
        {
            "model": "test-model",
            "max_tokens": 50,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{RED_PIXEL}"},
                        },
                    ],
                }
            ],
        },
        False,
    ),
}
ERRORS = {
    "error_400": 400,
    "error_401": 401,
    "error_403": 403,
    "error_404": 404,
    "error_413": 413,
    "error_429": 429,
    "error_overloaded": 503,
    "error_5xx": 502,
}


def _provider() -> AnthropicProvider:
    config = json.loads((TRANSCRIPTS / "_provider.json").read_text())["config"]
    return AnthropicProvider(
        ProviderSettings(name="anthropic", base_url="http://standin", api_key=config["api_key"])
    )


def _transcript(name: str) -> dict[str, Any]:
    return json.loads((TRANSCRIPTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_every_scenario_has_a_transcript() -> None:
    names = {path.stem for path in TRANSCRIPTS.glob("*.json")} - {"_provider"}
    assert names == set(REQUESTS) | set(ERRORS)


@pytest.mark.parametrize("name", sorted(set(REQUESTS) | set(ERRORS)))
def test_request_is_the_recorded_call(name: str) -> None:
    body, stream = REQUESTS.get(name, (PLAIN, False))
    call = _provider().chat_call(body, stream=stream)
    recorded = _transcript(name)["request"]
    assert (call.method, call.path) == (recorded["method"], recorded["path"])
    headers = dict(call.headers)
    for header, value in recorded["headers"].items():
        assert headers[header] == value
    assert orjson.loads(call.body or b"") == recorded["json"]


def _sse_bytes(response: dict[str, Any]) -> bytes:
    out = b""
    for event in response["events"]:
        data = event["data"]
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out += f"event: {event['event']}\ndata: {text}\n\n".encode()
    return out + response.get("tail", "").encode()


def _replay(name: str, include_usage: bool) -> tuple[list[dict[str, Any]], Exception | None]:
    raw = _sse_bytes(_transcript(name)["response"])
    decoder = SseDecoder()
    translator = _provider().chat_stream(model="test-model", include_usage=include_usage)
    chunks: list[dict[str, Any]] = []
    try:
        for start in range(0, len(raw), 7):
            for kind, data, _id in decoder.feed(raw[start : start + 7]):
                event = StreamEvent(kind, data.encode())
                chunks.extend(dict(chunk) for chunk in translator.feed(event))
        decoder.finish()
        chunks.extend(dict(chunk) for chunk in translator.finish())
    except ProviderStreamError as exc:
        return chunks, exc
    return chunks, None


def _joined(chunks: list[dict[str, Any]]) -> tuple[str, str | None, dict[int, dict[str, str]]]:
    text, finish, tools = "", None, dict[int, dict[str, str]]()
    for chunk in chunks:
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls", ()):
                entry = tools.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.get("id") or ""
                entry["name"] += call["function"].get("name") or ""
                entry["arguments"] += call["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return text, finish, tools


def test_stream() -> None:
    chunks, error = _replay("stream", include_usage=True)
    assert error is None
    assert _joined(chunks)[:2] == (ANSWER, "stop")
    assert chunks[-1]["usage"]["prompt_tokens"] == 14
    assert chunks[-1]["usage"]["completion_tokens"] == 8


def test_stream_tool_calls() -> None:
    _text, finish, tools = _joined(_replay("stream_tool_call", include_usage=False)[0])
    assert finish == "tool_calls"
    assert json.loads(tools[0]["arguments"]) == {"location": "Paris"}
    _text, finish, tools = _joined(_replay("parallel_tool_calls", include_usage=False)[0])
    assert sorted(tools) == [0, 1]
    assert [json.loads(tools[i]["arguments"])["location"] for i in (0, 1)] == ["Paris", "Tokyo"]
    assert tools[0]["id"] != tools[1]["id"]


def test_stream_cut() -> None:
    chunks, error = _replay("stream_cut", include_usage=False)
    assert _joined(chunks)[0] == "The capital"
    assert isinstance(error, ProviderStreamError)
    assert error.failure.status == 502


@pytest.mark.parametrize(
    ("name", "content"),
    [("plain", ANSWER), ("usage", ANSWER), ("vision", "A single red pixel.")],
)
def test_answers(name: str, content: str) -> None:
    payload = orjson.dumps(_transcript(name)["response"]["json"])
    answer = _provider().chat_answer(payload, model="test-model")
    assert answer["choices"][0]["message"]["content"] == content
    if name == "usage":
        assert answer["usage"]["prompt_tokens"] == 2006
        assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == 1920


@pytest.mark.parametrize(("name", "status"), sorted(ERRORS.items()))
def test_errors(name: str, status: int) -> None:
    response = _transcript(name)["response"]
    failure = _provider().failure(
        response["status"], dict(response["headers"]), orjson.dumps(response["json"])
    )
    assert failure.status == status
    if name == "error_429":
        assert ("retry-after", "7") in failure.headers
