"""The official `anthropic` SDK on `/v1/messages`, over every provider with transcripts.

fd2's inbound Messages API turns the SDK's request into the very OpenAI request the `openai`
SDK sends for the same scenario, so each provider's transcripts serve unchanged: the replay
stand-in checks that fd2 sent the recorded request, and the SDK must see the scenario's answer
in Anthropic's shapes. The scenarios whose OpenAI request has no Messages API twin (streamed tool
calls: the inbound stream always asks for usage; `json_schema`: Anthropic's format has no schema
name; embeddings; `tool_call` where the `openai` SDK's explicit `stream: false` is relayed as it
is) are covered by tests/e2e/test_anthropic_inbound.py instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from e2e.conftest import Service

from .conftest import PROJECT, TRANSCRIPTS, Replay, providers
from .scenarios import (
    ANSWER,
    BY_NAME,
    COMPLETION_TOKENS,
    MAX_TOKENS,
    MODEL,
    NO_CACHED_TOKENS,
    PROMPT_TOKENS,
    QUESTION,
    RED_PIXEL_PNG,
    SYSTEM,
    USAGE,
    VISION_ANSWER,
    WEATHER_TOOL,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    500: "api_error",
    503: "overloaded_error",
}
TOOL = {
    "name": WEATHER_TOOL["function"]["name"],
    "description": WEATHER_TOOL["function"]["description"],
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}


def _ask(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": QUESTION}],
        **extra,
    }


def _plain(client: anthropic.Anthropic, provider: str) -> None:
    message = client.messages.create(**_ask())
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == ANSWER  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert usage.input_tokens + (usage.cache_read_input_tokens or 0) == PROMPT_TOKENS
    assert usage.output_tokens == COMPLETION_TOKENS


def _stream(client: anthropic.Anthropic, provider: str) -> None:
    with client.messages.stream(**_ask()) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == ANSWER
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == COMPLETION_TOKENS


def _tool_call(client: anthropic.Anthropic, provider: str) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    assert message.stop_reason == "tool_use"
    [call] = [block for block in message.content if block.type == "tool_use"]
    assert call.id
    assert (call.name, call.input) == ("get_weather", {"location": "Paris"})


def _vision(client: anthropic.Anthropic, provider: str) -> None:
    image = {"type": "base64", "media_type": "image/png", "data": RED_PIXEL_PNG}
    message = client.messages.create(
        model=MODEL,
        max_tokens=MAX_TOKENS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image", "source": image},  # type: ignore[typeddict-item]
                ],
            }
        ],
    )
    assert message.content[0].text == VISION_ANSWER  # type: ignore[union-attr]


def _usage(client: anthropic.Anthropic, provider: str) -> None:
    usage = client.messages.create(**_ask()).usage
    cached = usage.cache_read_input_tokens or 0
    assert usage.input_tokens + cached == USAGE["prompt_tokens"]
    assert usage.output_tokens == USAGE["completion_tokens"]
    if provider not in NO_CACHED_TOKENS:
        assert cached == USAGE["cached_tokens"]


def _error(name: str) -> Callable[[anthropic.Anthropic, str], None]:
    expected = BY_NAME[name].error
    assert expected is not None

    def run(client: anthropic.Anthropic, provider: str) -> None:
        with pytest.raises(anthropic.APIStatusError) as raised:
            client.messages.create(**_ask())
        # The chat path maps every provider's errors, the passthrough's too (no relayed status).
        status = expected.status
        response = raised.value.response
        assert response.status_code == status, response.text
        body = response.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == ERROR_TYPES[status]
        assert body["error"]["message"]
        assert body["request_id"] == response.headers["x-request-id"]
        for header, value in expected.headers.items():
            assert response.headers.get(header) == value, f"header {header} not passed through"

    return run


RUNS: dict[str, Callable[[anthropic.Anthropic, str], None]] = {
    "plain": _plain,
    "stream": _stream,
    "tool_call": _tool_call,
    "vision": _vision,
    "usage": _usage,
    **{name: _error(name) for name in BY_NAME if name.startswith("error_")},
}


def _twin(provider: str, scenario: str) -> bool:
    """Whether the Messages request makes the transcript's request: not when the `openai` SDK
    sent `stream: false` and the provider relays it (the Messages request says nothing)."""
    recorded = json.loads((TRANSCRIPTS / provider / f"{scenario}.json").read_text())["request"]
    return "stream" not in (recorded.get("json") or {}) or scenario == "stream"


CASES = [
    (provider.name, name)
    for provider in providers()
    for name in RUNS
    if not (TRANSCRIPTS / provider.name / f"{name}.json").exists() or _twin(provider.name, name)
]


@pytest.mark.parametrize(
    ("provider", "scenario"), CASES, ids=[f"{provider}-{name}" for provider, name in CASES]
)
def test_anthropic_sdk(
    provider: str, scenario: str, conformance_fd2: Service, replayer: Replay
) -> None:
    path = TRANSCRIPTS / provider / f"{scenario}.json"
    assert path.exists(), f"missing transcript {path.relative_to(TRANSCRIPTS)}"
    replayer.load(json.loads(path.read_text()))
    client = anthropic.Anthropic(
        base_url=f"{conformance_fd2.url}/{PROJECT}/{provider}",
        api_key="unused",
        max_retries=0,
        timeout=30.0,
    )
    try:
        RUNS[scenario](client, provider)
    finally:
        client.close()
    deadline = time.monotonic() + 2.0
    result = replayer.result()
    while result["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
        result = replayer.result()
    assert not result["mismatches"], "fd2's request differs from the transcript:\n" + "\n".join(
        result["mismatches"]
    )
    assert result["requests"] == 1
