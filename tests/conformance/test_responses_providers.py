"""`/v1/responses` over every provider with transcripts: the Responses endpoint's handler on the
module's chat path (`ProviderChat`) against the replay stand-in. The wire request must be the
transcript's (the Responses request translates to the same chat request), and the answer or the
stream events must carry the transcript's text or function call."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from e2e.conftest import Service
from fd2.prompts.resolve import PromptResolver
from fd2.serving.request import Request
from fd2.types import Message
from fd2_inference.responses.endpoint import ResponsesEndpoint
from fd2_inference.responses.store import ResponseStore

from .conftest import Replay, providers
from .scenarios import ANSWER, MAX_TOKENS, MODEL, QUESTION, SYSTEM, WEATHER_TOOL
from .test_chat_service import _chat
from .test_conformance import _transcript

NAMES = [provider.name for provider in providers()]
FUNCTION = WEATHER_TOOL["function"]
TOOL = {"type": "function", **FUNCTION}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _request(body: dict[str, Any]) -> Request:
    data = orjson.dumps(body)
    sent = asyncio.Event()

    async def receive() -> Message:
        if not sent.is_set():
            sent.set()
            return {"type": "http.request", "body": data, "more_body": False}
        await asyncio.Event().wait()  # the client stays
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": []}
    return Request(
        scope,
        receive,
        request_id="req-responses",
        project="p",
        module="m",
        environment="development",
        path="/v1/responses",
        content_length=len(data),
        max_body=1 << 20,
    )


async def _run(
    name: str, replay: Service, session: aiohttp.ClientSession, body: dict[str, Any]
) -> tuple[int, bytes]:
    provider = next(p for p in providers() if p.name == name)
    chat = await _chat(provider, replay, session)
    store = ResponseStore(None, "p", "m", 60)
    endpoint = ResponsesEndpoint(
        chat, store, PromptResolver("p", {}, None), logging.getLogger("t"), None
    )
    messages: list[Message] = []

    async def send(message: Message) -> None:
        messages.append(message)

    await endpoint.create(_request(body), send)
    status = int(messages[0]["status"])
    return status, b"".join(m.get("body", b"") for m in messages[1:])


def _mismatches(replayer: Replay) -> list[str]:
    # Transcripts recorded through the HTTP endpoint may say `"stream": false` and leave
    # `stream_options` out; the chat path drops a false `stream` and asks a stream for its usage
    # (what the Responses answer reports), as it does for every endpoint that uses it.
    quiet = (
        "body.stream: missing (transcript false)",
        'body.stream_options: sent {"include_usage":true}, not in the transcript',
    )
    return [m for m in replayer.result()["mismatches"] if m not in quiet]


def _events(data: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(block.split("\ndata: ", 1)[1]) for block in data.decode().split("\n\n") if block
    ]


def _plain_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "instructions": SYSTEM,
        "input": QUESTION,
        "max_output_tokens": MAX_TOKENS,
        **extra,
    }


@pytest.mark.parametrize("name", NAMES)
async def test_plain(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    replayer.load(_transcript(name, "plain"))
    status, data = await _run(name, replay, session, _plain_body())
    assert status == 200, data
    response = json.loads(data)
    assert response["output"][0]["content"][0]["text"] == ANSWER
    assert response["status"] == "completed"
    assert _mismatches(replayer) == []


@pytest.mark.parametrize("name", NAMES)
async def test_stream(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    replayer.load(_transcript(name, "stream"))
    status, data = await _run(name, replay, session, _plain_body(stream=True))
    assert status == 200, data
    events = _events(data)
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == ANSWER
    assert events[-1]["type"] == "response.completed"
    assert _mismatches(replayer) == []


def _tool_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "input": "What is the weather in Paris?",
        "max_output_tokens": MAX_TOKENS,
        "tools": [TOOL],
        "tool_choice": "auto",
        **extra,
    }


@pytest.mark.parametrize("name", NAMES)
async def test_function_call(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    transcript = _transcript(name, "tool_call")
    if transcript is None:
        pytest.fail(f"{name} has no tool_call transcript")
    replayer.load(transcript)
    status, data = await _run(name, replay, session, _tool_body())
    assert status == 200, data
    calls = [item for item in json.loads(data)["output"] if item["type"] == "function_call"]
    assert calls and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"])["location"] == "Paris"
    assert _mismatches(replayer) == []


@pytest.mark.parametrize("name", NAMES)
async def test_streamed_function_call(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    transcript = _transcript(name, "stream_tool_call")
    if transcript is None:
        pytest.fail(f"{name} has no stream_tool_call transcript")
    replayer.load(transcript)
    status, data = await _run(name, replay, session, _tool_body(stream=True))
    assert status == 200, data
    events = _events(data)
    arguments = "".join(
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    )
    assert json.loads(arguments)["location"] == "Paris"
    assert events[-1]["type"] == "response.completed"
    assert _mismatches(replayer) == []
