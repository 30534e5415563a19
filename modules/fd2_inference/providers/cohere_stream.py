"""Cohere v2's chat stream as OpenAI `chat.completion.chunk`s.

Each SSE event is named by its `type` (`message-start`, `content-start`, `content-delta`,
`content-end`, `tool-plan-delta`, `tool-call-start`, `tool-call-delta`, `tool-call-end`,
`citation-start`, `citation-end`, `message-end`). Text and tool-plan deltas become content
deltas; a tool call's start carries its id and name and its deltas the argument text, which map
one to one onto OpenAI's tool call deltas (numbered from 0 in the order the calls start). The
stream is complete at `message-end`, whose finish reason and usage close it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from fd2_inference.providers.base import ProviderFailure, ProviderStreamError, StreamEvent
from fd2_inference.providers.cohere_answer import FAILED, completion_id, finish_reason, openai_usage

_CUT = ProviderFailure(
    status=502,
    type="upstream_error",
    code="stream_incomplete",
    message="The Cohere stream ended before its message-end event.",
)


def _failed(message: str) -> ProviderStreamError:
    return ProviderStreamError(
        ProviderFailure(status=502, type="upstream_error", code="bad_gateway", message=message)
    )


def _message_delta(data: Mapping[str, Any]) -> Mapping[str, Any]:
    delta = data.get("delta")
    message = delta.get("message") if isinstance(delta, Mapping) else None
    return message if isinstance(message, Mapping) else {}


class CohereStream:
    """One stream's translation (see StreamTranslator in `base`)."""

    __slots__ = (
        "_calls",
        "_created",
        "_done",
        "_id",
        "_include_usage",
        "_model",
        "_started",
        "_thinking",
        "_usage",
    )

    def __init__(self, *, model: str, include_usage: bool, created: int) -> None:
        self._model = model
        self._include_usage = include_usage
        self._created = created
        self._id = completion_id(None)
        self._started = False
        self._done = False
        self._calls: dict[Any, int] = {}  # Cohere's tool call index -> OpenAI's
        self._thinking: set[Any] = set()  # content blocks holding thinking, not text
        self._usage: dict[str, Any] | None = None

    @property
    def usage(self) -> Mapping[str, int] | None:
        return self._usage

    def feed(self, event: StreamEvent) -> Sequence[Mapping[str, Any]]:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise _failed("Cohere sent a stream event that is not a JSON object.")
        kind = event.name or data.get("type")
        index = data.get("index")
        message = _message_delta(data)
        if kind == "message-start":
            if isinstance(data.get("id"), str):
                self._id = completion_id(data["id"])
            return [self._chunk({"content": ""})]
        if kind in ("content-start", "content-delta"):
            content = message.get("content")
            if not isinstance(content, Mapping):
                return ()
            if content.get("type") == "thinking":
                self._thinking.add(index)
            text = content.get("text")
            if index in self._thinking or not isinstance(text, str) or not text:
                return ()
            return [self._chunk({"content": text})]
        if kind == "tool-plan-delta":
            plan = message.get("tool_plan")
            return [self._chunk({"content": plan})] if isinstance(plan, str) and plan else ()
        if kind in ("tool-call-start", "tool-call-delta"):
            return self._tool_call(kind, index, message.get("tool_calls"))
        if kind == "message-end":
            return self._end(data)
        if kind == "error":
            raise _failed(f"Cohere: {data.get('message') or 'the stream failed.'}")
        return ()  # content-end, tool-call-end, citations, and events added later

    def _tool_call(self, kind: str, index: Any, call: Any) -> Sequence[Mapping[str, Any]]:
        if not isinstance(call, Mapping):
            return ()
        function = call.get("function")
        if not isinstance(function, Mapping):
            function = {}
        if kind == "tool-call-start":
            self._calls[index] = len(self._calls)
            delta: dict[str, Any] = {
                "index": self._calls[index],
                "id": call.get("id"),
                "type": "function",
                "function": {
                    "name": function.get("name", ""),
                    "arguments": function.get("arguments") or "",
                },
            }
        else:
            arguments = function.get("arguments")
            if index not in self._calls or not isinstance(arguments, str) or not arguments:
                return ()
            delta = {"index": self._calls[index], "function": {"arguments": arguments}}
        return [self._chunk({"tool_calls": [delta]})]

    def _end(self, data: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        delta = data.get("delta")
        if not isinstance(delta, Mapping):
            delta = {}
        reason = delta.get("finish_reason")
        if reason in FAILED:
            error = delta.get("error")
            raise _failed(
                f"Cohere: {error}"
                if isinstance(error, str) and error
                else f"Cohere ended the generation with {reason}."
            )
        self._usage = openai_usage(delta.get("usage"))
        self._done = True
        finish = "tool_calls" if self._calls else finish_reason(reason)
        return [self._chunk({}, finish)]

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        if not self._started:  # the first delta names the role, as OpenAI's do
            self._started = True
            delta = {"role": "assistant", **delta}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }

    def finish(self) -> Sequence[Mapping[str, Any]]:
        if not self._done:
            raise ProviderStreamError(_CUT)
        if not self._include_usage:
            return ()
        return [
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": self._usage
                or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        ]
