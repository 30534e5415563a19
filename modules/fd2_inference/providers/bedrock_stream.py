"""A ConverseStream as OpenAI `chat.completion.chunk`s (one translator per stream).

Events, by `:event-type`: `messageStart` (role), `contentBlockStart` (a tool call's id and name),
`contentBlockDelta` (`text`, or `toolUse.input` JSON text in pieces), `contentBlockStop`,
`messageStop` (`stopReason`), `metadata` (`usage`, last). An exception event ends the stream with
ProviderStreamError (the deframer raises it first when it frames them; this covers relays that
hand every event over). Tool calls are numbered in their order of appearance, as OpenAI's
`index`; a forced answer tool's input is streamed as content (see bedrock_request).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from fd2_inference.providers.base import ProviderFailure, ProviderStreamError, StreamEvent
from fd2_inference.providers.bedrock_answer import (
    completion_id,
    finish_reason,
    is_answer_tool,
    usage,
)
from fd2_inference.providers.bedrock_errors import exception_failure


class ConverseStreamTranslator:
    __slots__ = (
        "_answer_blocks",
        "_base",
        "_include_usage",
        "_stopped",
        "_tool_index",
        "_usage",
    )

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._base: dict[str, Any] = {
            "id": completion_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        self._include_usage = include_usage
        self._tool_index: dict[int, int] = {}
        """Converse content block index -> OpenAI tool call index."""
        self._answer_blocks: set[int] = set()
        self._usage: dict[str, Any] | None = None
        self._stopped = False

    @property
    def usage(self) -> Mapping[str, int] | None:
        return self._usage

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **self._base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def feed(self, event: StreamEvent) -> Sequence[Mapping[str, Any]]:
        name = event.name
        if name == "contentBlockDelta":
            return self._delta(orjson.loads(event.data))
        if name == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if name == "contentBlockStart":
            return self._block_start(orjson.loads(event.data))
        if name == "messageStop":
            body = orjson.loads(event.data)
            self._stopped = True
            finish = finish_reason(
                body.get("stopReason"),
                answered_by_tool=bool(self._answer_blocks) and not self._tool_index,
            )
            return [self._chunk({}, finish)]
        if name == "metadata":
            self._usage = usage(orjson.loads(event.data).get("usage"))
            return ()
        if name is not None and name.endswith("Exception"):
            raise ProviderStreamError(exception_failure(name, event.data))
        return ()  # contentBlockStop, and event types added later

    def _block_start(self, body: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        use = (body.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return ()
        block = int(body.get("contentBlockIndex", 0))
        if is_answer_tool(use.get("name")):
            self._answer_blocks.add(block)
            return ()
        index = len(self._tool_index)
        self._tool_index[block] = index
        call = {
            "index": index,
            "id": use["toolUseId"],
            "type": "function",
            "function": {"name": use["name"], "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _delta(self, body: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        delta = body.get("delta") or {}
        text = delta.get("text")
        if isinstance(text, str):
            return [self._chunk({"content": text})] if text else ()
        use = delta.get("toolUse")
        if isinstance(use, dict):
            piece = use.get("input") or ""
            block = int(body.get("contentBlockIndex", 0))
            if block in self._answer_blocks:
                return [self._chunk({"content": piece})] if piece else ()
            index = self._tool_index.get(block)
            if index is None or not piece:
                return ()
            return [
                self._chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            ]
        return ()  # reasoningContent: not part of a chat.completion.chunk

    def finish(self) -> Sequence[Mapping[str, Any]]:
        if not self._stopped:
            raise ProviderStreamError(
                ProviderFailure(
                    status=502,
                    type="upstream_error",
                    message="The provider's stream ended before its messageStop event.",
                    code="bad_gateway",
                )
            )
        if self._include_usage and self._usage is not None:
            return [{**self._base, "choices": [], "usage": self._usage}]
        return ()
