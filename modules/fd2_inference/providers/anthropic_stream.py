"""Anthropic's stream events -> OpenAI `chat.completion.chunk` objects (pure, one per stream).

Anthropic streams `message_start`, then per content block `content_block_start`, its
`content_block_delta`s and `content_block_stop`, then `message_delta` (stop reason, cumulative
usage) and `message_stop`; `ping` may come anywhere and `error` ends the stream. OpenAI streams
one choice's deltas: the role first, text as `content`, each tool call opened with its `index`,
`id`, `type` and `function.name` (arguments "") and continued with `function.arguments` pieces,
then a chunk with the finish reason, and a last one with `usage` when the client asked for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from fd2_inference.providers.anthropic_answer import JSON_TOOL_NAME, finish_reason, openai_usage
from fd2_inference.providers.anthropic_errors import stream_failure
from fd2_inference.providers.base import ProviderFailure, ProviderStreamError, StreamEvent

_NOTHING: Final[Sequence[Mapping[str, Any]]] = ()
_CUT: Final = ProviderFailure(
    status=502,
    type="upstream_error",
    message="The Anthropic stream ended before its message_stop event.",
    code="upstream_stream_cut",
)


class AnthropicStream:
    """The StreamTranslator of one Anthropic stream."""

    __slots__ = (
        "_created",
        "_done",
        "_id",
        "_include_usage",
        "_json_block",
        "_model",
        "_raw_usage",
        "_stop_reason",
        "_tools",
    )

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time())
        self._id = ""
        self._raw_usage: dict[str, Any] = {}
        self._stop_reason: object = None
        self._tools: dict[int, int] = {}
        """Anthropic content block index -> OpenAI tool call index (0, 1, ... in order)."""
        self._json_block = -2
        """The content block of the forced json_object tool: its input is streamed as text."""
        self._done = False

    @property
    def usage(self) -> Mapping[str, int] | None:
        if not self._raw_usage:
            return None
        found = openai_usage(self._raw_usage)
        return {key: value for key, value in found.items() if isinstance(value, int)}

    def feed(self, event: StreamEvent) -> Sequence[Mapping[str, Any]]:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise ProviderStreamError(_bad("an event that is not JSON")) from None
        if not isinstance(data, dict):
            raise ProviderStreamError(_bad("an event that is not a JSON object"))
        kind = data.get("type", event.name)
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "message_start":
            return self._start(data)
        if kind == "message_delta":
            self._message_delta(data)
            return _NOTHING
        if kind == "message_stop":
            return self._stop()
        if kind == "error":
            raise ProviderStreamError(stream_failure(event.data))
        return _NOTHING  # ping, content_block_stop, and event types added later

    def finish(self) -> Sequence[Mapping[str, Any]]:
        if not self._done:
            raise ProviderStreamError(_CUT)
        return _NOTHING

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _start(self, data: dict[str, Any]) -> Sequence[Mapping[str, Any]]:
        message = data.get("message")
        if isinstance(message, dict):
            self._id = str(message.get("id") or "")
            self._model = str(message.get("model") or self._model)
            usage = message.get("usage")
            if isinstance(usage, dict):
                self._raw_usage.update(usage)
        return (self._chunk({"role": "assistant", "content": ""}),)

    def _block_start(self, data: dict[str, Any]) -> Sequence[Mapping[str, Any]]:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return _NOTHING
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return (self._chunk({"content": text}),) if isinstance(text, str) and text else _NOTHING
        if kind != "tool_use":
            return _NOTHING  # thinking blocks: OpenAI's chunks have no place for them
        if block.get("name") == JSON_TOOL_NAME:
            self._json_block = _index(data)
            return _NOTHING
        position = len(self._tools)
        self._tools[_index(data)] = position
        call = {
            "index": position,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return (self._chunk({"tool_calls": [call]}),)

    def _delta(self, data: dict[str, Any]) -> Sequence[Mapping[str, Any]]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return _NOTHING
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return (self._chunk({"content": text}),) if isinstance(text, str) and text else _NOTHING
        if kind == "input_json_delta":
            piece = delta.get("partial_json")
            if _index(data) == self._json_block:
                return (self._chunk({"content": piece}),) if piece else _NOTHING
            position = self._tools.get(_index(data))
            if not isinstance(piece, str) or not piece or position is None:
                return _NOTHING
            call = {"index": position, "function": {"arguments": piece}}
            return (self._chunk({"tool_calls": [call]}),)
        return _NOTHING  # thinking_delta, signature_delta, citations_delta

    def _message_delta(self, data: dict[str, Any]) -> None:
        delta = data.get("delta")
        if isinstance(delta, dict) and "stop_reason" in delta:
            self._stop_reason = delta["stop_reason"]
        usage = data.get("usage")
        if isinstance(usage, dict):
            # Cumulative counts: the last one seen is the answer's.
            self._raw_usage.update({k: v for k, v in usage.items() if v is not None})

    def _stop(self) -> Sequence[Mapping[str, Any]]:
        self._done = True
        finish = finish_reason(self._stop_reason)
        if finish == "tool_calls" and not self._tools:
            finish = "stop"  # the forced json_object tool's call is the answer, not a call
        last = self._chunk({}, finish)
        if not self._include_usage:
            return (last,)
        usage_chunk = self._chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = openai_usage(self._raw_usage)
        return (last, usage_chunk)


def _index(data: Mapping[str, Any]) -> int:
    index = data.get("index")
    return index if isinstance(index, int) else -1


def _bad(what: str) -> ProviderFailure:
    return ProviderFailure(
        status=502,
        type="upstream_error",
        message=f"The Anthropic stream sent {what}.",
        code="bad_gateway",
    )
