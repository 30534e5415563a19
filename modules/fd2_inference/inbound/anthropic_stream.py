"""OpenAI `chat.completion.chunk`s -> Anthropic's stream events (pure, one per stream).

Anthropic's clients expect `message_start`, then each content block opened
(`content_block_start` with its index), filled (`text_delta`, or `input_json_delta` for a tool's
input) and closed (`content_block_stop`) before the next opens, then `message_delta` with the
stop reason and usage, and `message_stop`. OpenAI streams text and tool calls as deltas of one
choice, a tool call opened by the delta that carries its `id` and name; so a block is opened
whenever the kind of delta (text, or another tool call) changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2_inference.inbound.anthropic_answer import (
    anthropic_usage,
    error_body,
    message_id,
    stop_reason,
)

_TEXT: Final = -1
"""The kind of the open block when it is text (else the OpenAI tool call index it holds)."""


def event(name: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class MessagesStream:
    """Turns one OpenAI chunk stream into Anthropic's event stream, as bytes to send."""

    __slots__ = (
        "_block",
        "_finish",
        "_kind",
        "_model",
        "_prompt_estimate",
        "_request_id",
        "_started",
        "_tool_id",
        "_usage",
    )

    def __init__(self, *, model: str, request_id: str, prompt_estimate: int = 0) -> None:
        self._model = model
        self._request_id = request_id
        self._prompt_estimate = prompt_estimate
        """`message_start` comes before any usage: it says the estimate (the end says more)."""
        self._started = False
        self._block = -1
        """Index of the open content block (-1: none open yet)."""
        self._kind: int | None = None
        self._tool_id: object = None
        self._finish: object = None
        self._usage: object = None

    def feed(self, chunk: Mapping[str, Any]) -> bytes:
        out = b"" if self._started else self._start(chunk)
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = usage
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue  # Anthropic answers with one message: the first choice
            delta = choice.get("delta")
            if isinstance(delta, Mapping):
                out += self._delta(delta)
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
        return out

    def finish(self) -> bytes:
        out = b"" if self._started else self._start({})
        out += self._close()
        usage = anthropic_usage(self._usage, self._prompt_estimate)
        out += event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(self._finish), "stop_sequence": None},
                "usage": usage,
            },
        )
        return out + event("message_stop", {"type": "message_stop"})

    def error(self, status: int, message: str) -> bytes:
        """The `error` event that ends a stream that failed after it started."""
        return b"event: error\ndata: " + error_body(status, message, self._request_id) + b"\n\n"

    def _start(self, chunk: Mapping[str, Any]) -> bytes:
        self._started = True
        model = chunk.get("model")
        if isinstance(model, str) and model:
            self._model = model
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id"), self._request_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._prompt_estimate, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _delta(self, delta: Mapping[str, Any]) -> bytes:
        out = b""
        for text in (delta.get("content"), delta.get("refusal")):
            if isinstance(text, str) and text:
                if self._kind != _TEXT:
                    out += self._open(_TEXT, {"type": "text", "text": ""})
                out += self._piece({"type": "text_delta", "text": text})
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, Mapping):
                out += self._tool_delta(call)
        return out

    def _tool_delta(self, call: Mapping[str, Any]) -> bytes:
        out = b""
        index = call.get("index")
        index = index if isinstance(index, int) else 0
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        call_id = call.get("id")
        # Some servers repeat the id in every delta of a call: only a new id opens a block.
        if self._kind != index or (call_id and call_id != self._tool_id):
            self._tool_id = call_id
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call_id or f"toolu_{self._request_id}_{index}",
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._open(index, block)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self._piece({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _open(self, kind: int, block: Mapping[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._kind = kind
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        return out + event("content_block_start", start)

    def _piece(self, delta: Mapping[str, Any]) -> bytes:
        piece = {"type": "content_block_delta", "index": self._block, "delta": delta}
        return event("content_block_delta", piece)

    def _close(self) -> bytes:
        if self._kind is None:
            return b""
        self._kind = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._block})
