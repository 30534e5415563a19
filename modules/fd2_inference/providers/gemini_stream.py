"""Gemini's `streamGenerateContent?alt=sse` as OpenAI `chat.completion.chunk`s.

Each SSE `data:` is a whole `GenerateContentResponse` holding the next piece of each candidate.
Text parts become content deltas; a function call arrives whole, so it becomes one tool call
delta carrying the id, the name and all the arguments. Gemini's stream has no end marker: it is
complete when every candidate it started has a `finishReason`, and one that stops before that was
cut. `usageMetadata` is cumulative; the last one seen is the answer's usage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from fd2_inference.providers.base import ProviderFailure, ProviderStreamError, StreamEvent
from fd2_inference.providers.gemini_answer import (
    finish_reason,
    openai_usage,
    tool_call,
    visible_text,
)
from fd2_inference.providers.gemini_ids import new_completion_id

FailureOf = Callable[[int, Mapping[str, Any]], ProviderFailure]
"""Builds the failure for an `{"error": ...}` object sent inside the stream."""

_CUT = ProviderFailure(
    status=502,
    type="upstream_error",
    code="stream_incomplete",
    message="The Gemini stream ended before its last candidate finished.",
)


class _Choice:
    __slots__ = ("calls", "finished", "started")

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self.calls = 0


class GeminiStream:
    """One stream's translation (see StreamTranslator in `base`)."""

    __slots__ = ("_choices", "_created", "_failure_of", "_id", "_include_usage", "_model", "_usage")

    def __init__(self, *, model: str, include_usage: bool, failure_of: FailureOf) -> None:
        self._model = model
        self._include_usage = include_usage
        self._failure_of = failure_of
        self._id: str | None = None
        self._created = int(time.time())
        self._choices: dict[int, _Choice] = {}
        self._usage: dict[str, Any] | None = None

    @property
    def usage(self) -> Mapping[str, int] | None:
        return self._usage

    def feed(self, event: StreamEvent) -> Sequence[Mapping[str, Any]]:
        try:
            answer = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise ProviderStreamError(
                ProviderFailure(
                    status=502,
                    type="upstream_error",
                    code="bad_gateway",
                    message="Gemini sent a stream event that is not a JSON object.",
                )
            )
        error = answer.get("error")
        if isinstance(error, Mapping):
            code = error.get("code")
            raise ProviderStreamError(
                self._failure_of(code if isinstance(code, int) else 500, error)
            )
        if self._id is None:
            self._id = new_completion_id(answer.get("responseId"))
        usage = openai_usage(answer.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        chunks: list[dict[str, Any]] = []
        candidates = answer.get("candidates") or []
        for position, candidate in enumerate(candidates):
            if isinstance(candidate, Mapping):
                chunks.extend(self._candidate(candidate, position))
        feedback = answer.get("promptFeedback")
        if not candidates and isinstance(feedback, Mapping) and feedback.get("blockReason"):
            choice = self._choices.setdefault(0, _Choice())
            chunks.append(self._chunk(0, self._opening(choice, {}), None))
            chunks.append(self._chunk(0, {}, "content_filter"))
            choice.finished = True
        return chunks

    def _candidate(self, candidate: Mapping[str, Any], position: int) -> list[dict[str, Any]]:
        index = candidate.get("index")
        if not isinstance(index, int):
            index = position
        choice = self._choices.setdefault(index, _Choice())
        chunks = []
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, Mapping) else None
        for part in parts or ():
            if not isinstance(part, Mapping):
                continue
            text = visible_text(part)
            if text:
                chunks.append(self._chunk(index, self._opening(choice, {"content": text}), None))
            call = tool_call(part, choice.calls)
            if call is not None:
                choice.calls += 1
                delta = self._opening(choice, {"tool_calls": [call]})
                chunks.append(self._chunk(index, delta, None))
        reason = candidate.get("finishReason")
        if reason is not None and not choice.finished:
            if not choice.started:  # a candidate that ends before saying anything
                chunks.append(self._chunk(index, self._opening(choice, {"content": ""}), None))
            choice.finished = True
            chunks.append(self._chunk(index, {}, finish_reason(reason, choice.calls > 0)))
        return chunks

    @staticmethod
    def _opening(choice: _Choice, delta: dict[str, Any]) -> dict[str, Any]:
        # A choice's first delta names the role, as OpenAI's do.
        if choice.started:
            return delta
        choice.started = True
        return {"role": "assistant", **delta}

    def _chunk(self, index: int, delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": index, "delta": delta, "finish_reason": reason}],
        }

    def finish(self) -> Sequence[Mapping[str, Any]]:
        if not self._choices or not all(choice.finished for choice in self._choices.values()):
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
