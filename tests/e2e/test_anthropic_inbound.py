"""The official SDKs against fd2 under Granian, over Anthropic's wire and OpenAI's.

One project, two inference modules in front of one scripted stand-in
(tests/standins/anthropic_upstream.py): `claude` with the Anthropic provider (fd2 speaks the
Messages API upstream), `gpt` OpenAI-compatible (relayed). The `anthropic` SDK drives
`/v1/messages` on both (fd2's inbound Anthropic API over either provider); the `openai` SDK
drives `/v1/chat/completions` on `claude` (OpenAI in, Anthropic upstream). Both modules require
a project API key (the secure default), sent as the SDKs send it: `x-api-key` by the `anthropic`
SDK, `Authorization: Bearer` by the `openai` one; a token limit makes every request metered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from .conftest import Service, fd2_argv, fd2_env, free_port, start_service
from .leaks import LEAKS
from .support import REPO

STANDIN = REPO / "tests" / "standins" / "anthropic_upstream.py"
CLIENT_KEY = "fd2-e2e-anthropic-client-key-0123456789"
UPSTREAM_KEY = "sk-ant-e2e-upstream-key-9876543210"
KEY_ENV = "FD2_E2E_ANTHROPIC_UPSTREAM_KEY"
SYSTEM = "Be brief."
QUESTION = "What is the capital of France?"
EXPECTED = f"[{SYSTEM}] You said: {QUESTION}"
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Current weather of a city.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
OPENAI_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": WEATHER_TOOL["name"],
        "description": WEATHER_TOOL["description"],
        "parameters": WEATHER_TOOL["input_schema"],
    },
}
MODULES = ("claude", "gpt")

LEAKS.add_secret(CLIENT_KEY)
LEAKS.add_secret(UPSTREAM_KEY)


def _manifest(standin: str) -> dict[str, Any]:
    key_hash = hmac.new(b"", CLIENT_KEY.encode(), hashlib.sha256).hexdigest()
    return {
        "project_id": "polyglot",
        "environment": "development",
        "environments": {
            "common": {"secrets": {"anthropic_key": f"env:{KEY_ENV}"}},
            "development": {"limits": {"tokens_per_minute": 1_000_000}},
        },
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": "claude",
                "status": "enabled",
                "config": {"endpoint_url": f"http://{standin}", "model_name": "claude-test"},
            },
            {
                "module_type": "inference_endpoint",
                "name": "gpt",
                "status": "enabled",
                "config": {
                    "endpoint_url": f"http://{standin}/v1/chat/completions",
                    "model_name": "gpt-test",
                },
            },
        ],
        "metadata": {
            "fd2": {
                "api_keys": [{"id": "e2e", "hash": key_hash}],
                "modules": {
                    "claude": {
                        "config": {
                            "provider": "anthropic",
                            "api_key": "${environments.common.secrets.anthropic_key}",
                        }
                    }
                },
            }
        },
    }


@pytest.fixture(scope="module")
def standin(logs_dir: Path) -> Iterator[Service]:
    port = free_port()
    argv = [sys.executable, str(STANDIN), "--host", "127.0.0.1", "--port", str(port)]
    service = start_service(
        "anthropic-standin",
        argv,
        port=port,
        ready_path="/_standin/requests",
        log_dir=logs_dir,
        deadline_s=15,
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def fd2(
    standin: Service, logs_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    manifests = tmp_path_factory.mktemp("anthropic-manifests")
    (manifests / "polyglot.json").write_text(json.dumps(_manifest(standin.address), indent=2))
    port = free_port()
    argv = fd2_argv(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--manifests",
        str(manifests),
        "--default-env",
        "development",
        "--workers",
        "1",
    )
    env = {**fd2_env(), KEY_ENV: UPSTREAM_KEY}
    service = start_service(
        "fd2-anthropic", argv, port=port, ready_path="/healthz", log_dir=logs_dir, env=env
    )
    yield service
    service.stop()


class Clients:
    """The SDK clients of one test, closed when it ends (their pooled sockets with them)."""

    def __init__(self, fd2: Service) -> None:
        self._fd2 = fd2
        self._open: list[anthropic.Anthropic | openai.OpenAI] = []

    def claude(self, module: str, key: str = CLIENT_KEY) -> anthropic.Anthropic:
        base_url = f"{self._fd2.url}/polyglot/{module}"
        client = anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0, timeout=20)
        self._open.append(client)
        return client

    def openai(self, module: str = "claude") -> openai.OpenAI:
        base_url = f"{self._fd2.url}/polyglot/{module}/v1"
        client = openai.OpenAI(api_key=CLIENT_KEY, base_url=base_url, max_retries=0, timeout=20)
        self._open.append(client)
        return client

    def close(self) -> None:
        for client in self._open:
            client.close()


@pytest.fixture
def sdk(fd2: Service) -> Iterator[Clients]:
    clients = Clients(fd2)
    yield clients
    clients.close()


def _last_upstream_request(standin: Service) -> dict[str, Any]:
    recent = httpx.get(f"{standin.url}/_standin/requests", timeout=5).json()
    return recent[-1]  # type: ignore[no-any-return]


def _ask(**extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-test",
        "max_tokens": 100,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": QUESTION}],
        **extra,
    }


# --- the anthropic SDK on /v1/messages, over both providers


@pytest.mark.parametrize("module", MODULES)
def test_messages_create(sdk: Clients, standin: Service, module: str) -> None:
    message = sdk.claude(module).messages.create(**_ask())
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == EXPECTED  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 8
    assert message.usage.cache_read_input_tokens == 4
    assert message.usage.output_tokens > 0
    sent = _last_upstream_request(standin)
    if module == "claude":
        assert sent["path"] == "/v1/messages"
        assert sent["headers"]["x-api-key"] == UPSTREAM_KEY
        assert sent["headers"]["anthropic-version"] == "2023-06-01"
        assert sent["body"]["system"] == SYSTEM
        assert sent["body"]["max_tokens"] == 100
    else:
        assert sent["path"] == "/v1/chat/completions"
        assert "x-api-key" not in sent["headers"]
        assert sent["body"]["messages"][0] == {"role": "system", "content": SYSTEM}


@pytest.mark.parametrize("module", MODULES)
def test_messages_create_stream(sdk: Clients, module: str) -> None:
    events = list(sdk.claude(module).messages.create(**_ask(), stream=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1] == "content_block_start"
    text = "".join(
        event.delta.text
        for event in events
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    )
    assert text == EXPECTED
    delta = events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 0


@pytest.mark.parametrize("module", MODULES)
def test_messages_stream_helper(sdk: Clients, module: str) -> None:
    with sdk.claude(module).messages.stream(**_ask()) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert "".join(pieces) == EXPECTED
    assert final.content[0].text == EXPECTED  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.cache_read_input_tokens == 4


@pytest.mark.parametrize("module", MODULES)
def test_tool_use_round_trip(sdk: Clients, standin: Service, module: str) -> None:
    client = sdk.claude(module)
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.messages.create(
        model="claude-test", max_tokens=100, tools=[WEATHER_TOOL], messages=[question]
    )
    assert first.stop_reason == "tool_use"
    [call] = first.content
    assert call.type == "tool_use"
    assert (call.name, call.input) == ("get_weather", {"location": "Paris"})
    assert call.id
    second = client.messages.create(
        model="claude-test",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}],
            },
        ],
    )
    assert second.content[0].text == "Tool said: 18C"  # type: ignore[union-attr]
    sent = _last_upstream_request(standin)["body"]
    if module == "gpt":
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "18C"}
    else:
        assert sent["messages"][-1]["content"] == [
            {"type": "tool_result", "tool_use_id": call.id, "content": "18C"}
        ]


@pytest.mark.parametrize("module", MODULES)
def test_streamed_parallel_tool_use(sdk: Clients, module: str) -> None:
    with sdk.claude(module).messages.stream(
        model="claude-test",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris and in Tokyo?"}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    calls = [block for block in final.content if block.type == "tool_use"]
    assert [call.input for call in calls] == [{"location": "Paris"}, {"location": "Tokyo"}]
    assert len({call.id for call in calls}) == 2
    pieces = [e for e in events if e.type == "input_json" or e.type == "content_block_delta"]
    assert len(pieces) > 2, "the tool input arrives in pieces"


@pytest.mark.parametrize("module", MODULES)
def test_upstream_errors_keep_their_meaning(sdk: Clients, module: str) -> None:
    client = sdk.claude(module)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(**_ask(model="error-429"))
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert limited.value.response.headers["request-id"]
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(**_ask(model="error-529"))
    assert overloaded.value.status_code == 503
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(**_ask(model="error-401"))
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(**_ask(), extra_body={"top_k": 5})
    assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "top_k" in refused.value.body["error"]["message"]  # type: ignore[index]


def test_stream_error_event_reaches_the_sdk(sdk: Clients) -> None:
    received = ""
    client = sdk.claude("claude")
    with (
        pytest.raises(anthropic.APIStatusError) as failed,
        client.messages.stream(**_ask(model="stream-error")) as stream,
    ):
        for text in stream.text_stream:
            received += text
    assert received, "the text before the failure was delivered"
    assert "Overloaded" in str(failed.value)


def test_x_api_key_is_the_credential_and_requests_are_metered(sdk: Clients, fd2: Service) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        sdk.claude("claude", key="not-a-project-key").messages.create(**_ask())
    url = f"{fd2.url}/polyglot/claude/v1/messages"
    refused = httpx.post(url, json=_ask(), timeout=20)
    assert refused.status_code == 401
    # The gateway's own refusal is in Anthropic's shape on this endpoint, as the SDK expects.
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["request_id"] == refused.headers["x-request-id"]
    # ...and in OpenAI's on the OpenAI endpoints of the same module.
    chat = httpx.post(f"{fd2.url}/polyglot/claude/v1/chat/completions", json={}, timeout=20)
    assert chat.status_code == 401 and set(chat.json()["error"]) >= {"message", "type", "code"}
    answer = httpx.post(url, json=_ask(), headers={"x-api-key": CLIENT_KEY}, timeout=20)
    assert answer.status_code == 200
    assert answer.json()["type"] == "message"
    assert answer.headers["request-id"] == answer.headers["x-request-id"]
    # The token limit reserved the estimate: the prompt counted from the Messages body, plus
    # its max_tokens (100).
    assert int(answer.headers["x-ratelimit-limit-tokens"]) == 1_000_000
    assert int(answer.headers["x-ratelimit-remaining-tokens"]) <= 1_000_000 - 100


# --- the openai SDK over the Anthropic provider


def test_openai_sdk_plain_over_anthropic(sdk: Clients) -> None:
    completion = sdk.openai().chat.completions.create(
        model="claude-test",
        max_tokens=100,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
    )
    assert completion.choices[0].message.content == EXPECTED
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 12
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 4


def test_openai_sdk_stream_over_anthropic(sdk: Clients) -> None:
    chunks = list(
        sdk.openai().chat.completions.create(
            model="claude-test",
            max_tokens=100,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == EXPECTED
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 12


def test_openai_sdk_tools_over_anthropic(sdk: Clients) -> None:
    completion = sdk.openai().chat.completions.create(
        model="claude-test",
        max_tokens=100,
        tools=[OPENAI_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"location": "Paris"}  # type: ignore[union-attr]


def test_openai_sdk_streamed_tools_over_anthropic(sdk: Clients) -> None:
    chunks = list(
        sdk.openai().chat.completions.create(
            model="claude-test",
            max_tokens=100,
            tools=[OPENAI_TOOL],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "Weather in Paris and in Tokyo?"}],
            stream=True,
        )
    )
    calls: dict[int, dict[str, str]] = {}
    pieces = 0
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                if call.id:
                    assert not entry["id"], "a call's id comes once"
                    entry["id"] = call.id
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
                    pieces += 1
    assert sorted(calls) == [0, 1]
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [
        {"location": "Paris"},
        {"location": "Tokyo"},
    ]
    assert all(calls[i]["name"] == "get_weather" and calls[i]["id"] for i in (0, 1))
    assert pieces > 4, "the arguments arrive in pieces"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"


def test_openai_sdk_json_object_over_anthropic(sdk: Clients, standin: Service) -> None:
    completion = sdk.openai().chat.completions.create(
        model="claude-test",
        max_tokens=100,
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Weather in Paris, as JSON?"}],
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert json.loads(choice.message.content or "") == {"location": "Paris"}
    sent = _last_upstream_request(standin)["body"]
    assert sent["tool_choice"] == {"type": "tool", "name": "fd2_json_object"}
