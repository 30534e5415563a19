"""Anthropic message object -> OpenAI `chat.completion` (pure), and the pieces the stream shares.

Text blocks are joined into `content`; `tool_use` blocks become `tool_calls` whose `arguments`
are the compact JSON of their input (the call of the tool a `json_object` request forced is the
answer itself: its input is the content, and the answer finished with `stop`); `thinking`
blocks are not shown (OpenAI's chat completion has no place for them; their tokens are reported
as `reasoning_tokens`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2_inference.providers.anthropic_request import JSON_OBJECT_TOOL

JSON_TOOL_NAME: Final = JSON_OBJECT_TOOL["name"]

FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def openai_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's `usage` from Anthropic's: Anthropic counts cache reads and writes apart from
    `input_tokens`; OpenAI's `prompt_tokens` includes them, cache reads as `cached_tokens`."""
    cached = _count(usage, "cache_read_input_tokens")
    prompt = _count(usage, "input_tokens") + cached + _count(usage, "cache_creation_input_tokens")
    completion = _count(usage, "output_tokens")
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, Mapping):
        out["completion_tokens_details"] = {"reasoning_tokens": _count(details, "thinking_tokens")}
    return out


def _count(values: Mapping[str, Any], key: str) -> int:
    value = values.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def chat_completion(message: Mapping[str, Any], model: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    content = message.get("content")
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use" and block.get("name") == JSON_TOOL_NAME:
            texts.append(orjson.dumps(block.get("input", {})).decode())
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input", {})).decode(),
                    },
                }
            )
    answer: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        answer["tool_calls"] = calls
    usage = message.get("usage")
    out: dict[str, Any] = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": answer,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason"))
                if calls
                else _text_finish(message.get("stop_reason")),
            }
        ],
    }
    if isinstance(usage, Mapping):
        out["usage"] = openai_usage(usage)
    return out


def _text_finish(stop_reason: object) -> str:
    # An answer without tool calls did not finish for them (the forced json_object tool).
    found = finish_reason(stop_reason)
    return "stop" if found == "tool_calls" else found
