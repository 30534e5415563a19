"""The Gemini and Cohere conformance transcripts, replayed against the providers alone (no I/O).

The conformance suite (tests/conformance) runs them end to end through fd2 and the `openai` SDK;
this pins the pure half: for each scenario's OpenAI request the provider builds exactly the
recorded call, and the recorded answer (streams cut into 7-byte pieces, framed by the native SSE
decoder) translates to what the scenario expects. `test_cohere_transcripts` reuses it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from conformance import scenarios as S
from fd2.serving.sse import SseDecoder
from fd2_inference.providers.base import (
    Provider,
    ProviderSettings,
    ProviderStreamError,
    StreamEvent,
)
from fd2_inference.providers.cohere import CohereProvider
from fd2_inference.providers.gemini import GeminiProvider

TRANSCRIPTS = Path(__file__).parents[2] / "conformance" / "transcripts"
PLAIN = {"model": S.MODEL, "messages": S.messages(), "max_tokens": S.MAX_TOKENS}


def _weather(question: str, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": S.MODEL,
        "messages": [{"role": "user", "content": question}],
        "max_tokens": S.MAX_TOKENS,
        "tools": [S.WEATHER_TOOL],
        "tool_choice": "auto",
    }
    return {**body, "stream": True} if stream else body


# scenario -> (the OpenAI body the SDK sends, stream)
REQUESTS: dict[str, tuple[dict[str, Any], bool]] = {
    "plain": (PLAIN, False),
    "usage": (PLAIN, False),
    "stream": ({**PLAIN, "stream": True, "stream_options": {"include_usage": True}}, True),
    "stream_cut": ({**PLAIN, "stream": True}, True),
    "tool_call": (_weather("What is the weather in Paris?"), False),
    "stream_tool_call": (_weather("What is the weather in Paris?", stream=True), True),
    "parallel_tool_calls": (
        _weather("What is the weather in Paris and in Tokyo?", stream=True),
        True,
    ),
    "json_schema": (
        {
            "model": S.MODEL,
            "messages": [{"role": "user", "content": S.QUESTION}],
            "max_tokens": S.MAX_TOKENS,
            "response_format": {"type": "json_schema", "json_schema": S.CAPITAL_SCHEMA},
        },
        False,
    ),
    "vision": (
        {
            "model": S.MODEL,
            "max_tokens": S.MAX_TOKENS,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{S.RED_PIXEL_PNG}"},
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
CLASSES: dict[str, type[GeminiProvider] | type[CohereProvider]] = {
    "gemini": GeminiProvider,
    "cohere": CohereProvider,
}


def provider(name: str) -> Provider:
    config = json.loads((TRANSCRIPTS / name / "_provider.json").read_text())["config"]
    settings = ProviderSettings(name=name, base_url="", api_key=config["api_key"])
    return CLASSES[name](settings)


def transcript(name: str, scenario: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((TRANSCRIPTS / name / f"{scenario}.json").read_text())
    return loaded


def assert_call(sent: Any, recorded: Mapping[str, Any]) -> None:
    assert (sent.method, sent.path) == (recorded["method"], recorded["path"])
    headers = {key.lower(): value for key, value in sent.headers}
    for key, value in recorded["headers"].items():
        assert headers.get(key.lower()) == value, key
    assert orjson.loads(sent.body) == recorded["json"]


def stream_bytes(response: Mapping[str, Any]) -> bytes:
    raw = b""
    for event in response["events"]:
        data = event["data"]
        text = data if isinstance(data, str) else orjson.dumps(data).decode()
        name = f"event: {event['event']}\n" if "event" in event else ""
        raw += f"{name}data: {text}\n\n".encode()
    return raw + response.get("tail", "").encode()


def replay_stream(p: Provider, raw: bytes, *, include_usage: bool) -> list[Mapping[str, Any]]:
    decoder, translator = SseDecoder(), p.chat_stream(model=S.MODEL, include_usage=include_usage)
    chunks: list[Mapping[str, Any]] = []
    for start, end in itertools.pairwise([*range(0, len(raw), 7), len(raw)]):
        for name, data, _ in decoder.feed(raw[start:end]):
            event = StreamEvent(name if name != "message" else None, data.encode())
            chunks.extend(translator.feed(event))
    decoder.finish()
    chunks.extend(translator.finish())
    return chunks


def streamed(
    chunks: Sequence[Mapping[str, Any]],
) -> tuple[str, str | None, dict[int, dict[str, str]]]:
    text, finish, tools = "", None, dict[int, dict[str, str]]()
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                entry = tools.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.get("id") or ""
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return text, finish, tools


def check_chat(name: str, scenario: str) -> None:
    """Replays one chat scenario of `name`'s transcripts; asserts what the table expects."""
    p, recorded = provider(name), transcript(name, scenario)
    body, stream = REQUESTS[scenario]
    assert_call(p.chat_call(body, stream=stream), recorded["request"])
    response = recorded["response"]
    if not stream:
        answer = p.chat_answer(orjson.dumps(response["json"]), model=S.MODEL)
        choice = answer["choices"][0]
        if scenario in ("plain", "usage"):
            assert (choice["message"]["content"], choice["finish_reason"]) == (S.ANSWER, "stop")
            expected = (14, 8) if scenario == "plain" else (2006, 300)
            usage = answer["usage"]
            assert (usage["prompt_tokens"], usage["completion_tokens"]) == expected
        elif scenario == "tool_call":
            assert choice["finish_reason"] == "tool_calls"
            [call] = choice["message"]["tool_calls"]
            assert call["function"]["name"] == "get_weather"
            assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
        elif scenario == "json_schema":
            assert json.loads(choice["message"]["content"]) == {
                "country": "France",
                "capital": "Paris",
            }
        else:
            assert choice["message"]["content"] == S.VISION_ANSWER
        return
    raw = stream_bytes(response)
    include_usage = scenario == "stream"
    if response.get("cut"):
        with pytest.raises(ProviderStreamError):
            replay_stream(p, raw, include_usage=include_usage)
        return
    chunks = replay_stream(p, raw, include_usage=include_usage)
    text, finish, tools = streamed(chunks)
    if scenario == "stream":
        assert (text, finish) == (S.ANSWER, "stop")
        assert chunks[-1]["usage"]["prompt_tokens"] == S.PROMPT_TOKENS
        return
    assert finish == "tool_calls"
    places = ["Paris"] if scenario == "stream_tool_call" else ["Paris", "Tokyo"]
    assert sorted(tools) == list(range(len(places)))
    assert [json.loads(tools[i]["arguments"]) for i in tools] == [{"location": c} for c in places]
    assert all(tools[i]["id"] for i in tools)


def check_embeddings(name: str) -> None:
    p, recorded = provider(name), transcript(name, "embeddings")
    body = {"model": S.EMBEDDING_MODEL, "input": ["hello", "world"], "encoding_format": "base64"}
    assert_call(p.embeddings_call(body), recorded["request"])
    answer = p.embeddings_answer(
        orjson.dumps(recorded["response"]["json"]), model=S.EMBEDDING_MODEL
    )
    assert [item["embedding"] for item in answer["data"]] == [list(v) for v in S.EMBEDDINGS]
    assert answer["usage"]["prompt_tokens"] == S.EMBEDDING_TOKENS


def check_error(name: str, scenario: str) -> None:
    p, recorded = provider(name), transcript(name, scenario)
    assert_call(p.chat_call(PLAIN, stream=False), recorded["request"])
    response = recorded["response"]
    failure = p.failure(
        response["status"], dict(response["headers"]), orjson.dumps(response["json"])
    )
    assert failure.status == ERRORS[scenario]
    if scenario == "error_429":
        assert ("retry-after", "7") in failure.headers


@pytest.mark.parametrize("scenario", sorted(REQUESTS))
def test_chat(scenario: str) -> None:
    check_chat("gemini", scenario)


def test_embeddings() -> None:
    check_embeddings("gemini")


@pytest.mark.parametrize("scenario", sorted(ERRORS))
def test_errors(scenario: str) -> None:
    check_error("gemini", scenario)


def test_every_scenario_has_a_transcript() -> None:
    for name in CLASSES:
        recorded = {path.stem for path in (TRANSCRIPTS / name).glob("*.json")} - {"_provider"}
        assert recorded == {scenario.name for scenario in S.SCENARIOS}, name
