"""`/v1/messages` (fd2_inference.inbound): Anthropic requests in, OpenAI's chat path behind.

The chat path is a fake of the `ChatService` protocol (its real implementation is the module's,
tested end to end in tests/e2e/test_anthropic_inbound.py). Answers are checked with the
`anthropic` SDK's own models and stream accumulator, so what fd2 writes is what the SDK reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from fd2.serving.errors import BadRequest, UpstreamError
from fd2.serving.request import Request
from fd2_inference.inbound.anthropic_request import openai_body
from fd2_inference.inbound.messages import MessagesEndpoint
from fd2_inference.providers.base import ProviderFailure, ProviderStreamError

EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)  # type: ignore[arg-type]

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-test",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris."},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 20,
        "completion_tokens": 3,
        "total_tokens": 23,
        "prompt_tokens_details": {"cached_tokens": 5},
    },
}


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-2",
        "object": "chat.completion.chunk",
        "model": "gpt-test",
        "choices": choices,
        **extra,
    }


TOOL_CHUNKS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Checking."}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Tokyo"}'},
                }
            ]
        }
    ),
    _chunk({}, "tool_calls"),
    _chunk(None, usage={"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}),
]


class FakeChat:
    """A ChatService that records the OpenAI bodies it gets and answers as told."""

    def __init__(
        self,
        answer: Mapping[str, Any] | None = None,
        chunks: Sequence[Mapping[str, Any]] = (),
        fail: Exception | None = None,
        fail_after: Exception | None = None,
    ) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._answer = answer or ANSWER
        self._chunks = chunks
        self._fail = fail
        self._fail_after = fail_after

    async def complete(self, body: dict[str, Any], request: Any) -> Mapping[str, Any]:
        self.bodies.append(body)
        if self._fail is not None:
            raise self._fail
        return self._answer

    async def stream(self, body: dict[str, Any], request: Any) -> AsyncIterator[Mapping[str, Any]]:
        self.bodies.append(body)
        if self._fail is not None:
            raise self._fail
        for chunk in self._chunks:
            yield chunk
        if self._fail_after is not None:
            raise self._fail_after


class Exchange:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for frame in self.body.split(b"\n\n"):
            if frame:
                name, data = frame.split(b"\n")
                out.append(
                    (
                        name.removeprefix(b"event: ").decode(),
                        orjson.loads(data.removeprefix(b"data: ")),
                    )
                )
        return out


async def _post(chat: FakeChat, body: dict[str, Any]) -> Exchange:
    raw = orjson.dumps(body)
    delivered = False
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    exchange = Exchange()

    async def send(message: Any) -> None:
        exchange.sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/acme/chat/v1/messages", "headers": []}
    request = Request(
        scope,
        receive,
        request_id="req-9",
        project="acme",
        module="chat",
        environment="dev",
        path="/v1/messages",
        content_length=len(raw),
        max_body=1 << 20,
    )
    await MessagesEndpoint(chat, logging.getLogger("test")).handle(request, send)
    return exchange


BASE = {
    "model": "claude-x",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Capital of France?"}],
}


def test_request_translation() -> None:
    body = openai_body(
        {
            "model": "claude-x",
            "max_tokens": 100,
            "system": [
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
            ],
            "stop_sequences": ["END"],
            "temperature": 0.3,
            "metadata": {"user_id": "u1"},
            "tools": [
                {"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "stream": True,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "text", "text": "Let me check."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "get_weather",
                            "input": {"location": "Paris"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": [{"type": "text", "text": "18C"}],
                            "is_error": False,
                        },
                        {"type": "text", "text": "And?"},
                    ],
                },
            ],
        }
    )
    assert body == {
        "model": "claude-x",
        "max_tokens": 100,
        "temperature": 0.3,
        "stop": ["END"],
        "user": "u1",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object"},
                    "description": "d",
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
        },
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "user", "content": [{"type": "text", "text": "And?"}]},
        ],
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
        ({"max_tokens": None}, "max_tokens"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools.web_search_20250305",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages.content.document",
        ),
    ],
)
def test_refused_requests(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        openai_body({**BASE, **extra})
    assert caught.value.param == param


async def test_plain_answer_is_an_anthropic_message() -> None:
    chat = FakeChat()
    exchange = await _post(chat, BASE)
    assert exchange.status == 200
    assert chat.bodies[0]["messages"] == [{"role": "user", "content": "Capital of France?"}]
    message = Message.model_validate_json(exchange.body)
    assert message.id == "msg_chatcmpl-1"
    assert message.content[0].type == "text" and message.content[0].text == "Paris."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (15, 3)
    assert message.usage.cache_read_input_tokens == 5


async def test_tool_answer() -> None:
    answer = {
        **ANSWER,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location": "Paris"}',
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    message = Message.model_validate_json((await _post(FakeChat(answer), BASE)).body)
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert (block.id, block.name, block.input) == ("call_1", "get_weather", {"location": "Paris"})


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (BadRequest("nope", param="model"), 400, "invalid_request_error"),
        (UpstreamError("down"), 502, "api_error"),
    ],
)
async def test_errors_in_anthropic_shape(error: Exception, status: int, kind: str) -> None:
    exchange = await _post(FakeChat(fail=error), BASE)
    assert exchange.status == status
    assert orjson.loads(exchange.body) == {
        "type": "error",
        "error": {"type": kind, "message": str(error)},
        "request_id": "req-9",
    }


async def test_translation_error_is_anthropic_shaped_400() -> None:
    exchange = await _post(FakeChat(), {**BASE, "top_k": 3})
    assert exchange.status == 400
    assert orjson.loads(exchange.body)["error"]["type"] == "invalid_request_error"


def _accumulate(events: list[tuple[str, dict[str, Any]]]) -> Any:
    snapshot = None
    buffers: dict[int, bytes] = {}
    for name, data in events:
        assert name == data["type"]
        snapshot = accumulate_event(
            event=EVENTS.validate_python(data), current_snapshot=snapshot, json_bufs=buffers
        )
    return snapshot


async def test_stream_of_text_and_tools() -> None:
    chat = FakeChat(chunks=TOOL_CHUNKS)
    exchange = await _post(chat, {**BASE, "stream": True})
    assert exchange.status == 200
    assert exchange.headers[b"content-type"].startswith(b"text/event-stream")
    assert chat.bodies[0]["stream_options"] == {"include_usage": True}
    events = exchange.events()
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    message = _accumulate(events)
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Checking."
    assert message.content[1].input == {"location": "Paris"}
    assert message.content[2].input == {"location": "Tokyo"}
    assert [block.id for block in message.content[1:]] == ["call_a", "call_b"]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 12
    assert message.usage.input_tokens == 30


async def test_stream_failing_before_the_first_chunk_is_an_error_answer() -> None:
    exchange = await _post(FakeChat(fail=UpstreamError("down")), {**BASE, "stream": True})
    assert exchange.status == 502
    assert orjson.loads(exchange.body)["error"]["type"] == "api_error"


async def test_stream_failing_later_ends_with_an_error_event() -> None:
    failure = ProviderFailure(status=503, type="server_error", message="Anthropic: Overloaded")
    chat = FakeChat(chunks=TOOL_CHUNKS[:2], fail_after=ProviderStreamError(failure))
    events = (await _post(chat, {**BASE, "stream": True})).events()
    assert events[-1] == (
        "error",
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Anthropic: Overloaded"},
            "request_id": "req-9",
        },
    )
    assert "message_stop" not in [name for name, _ in events]
