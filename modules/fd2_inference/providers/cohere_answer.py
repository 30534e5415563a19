"""Cohere v2's answers (`/v2/chat`, `/v2/embed`) in OpenAI's shapes.

A `tool_plan` (the words before tool calls) is the message's content, as an OpenAI model's
words before its calls are; `thinking` content and citations have no OpenAI field and are left
out. Usage counts the tokens the model saw and wrote (`usage.tokens`), falling back to the
billed units when only those are given.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2.serving.errors import UpstreamError

_FINISH: Final = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
FAILED: Final = frozenset({"ERROR", "TIMEOUT"})
"""Finish reasons that mean the generation failed rather than ended."""


def finish_reason(reason: Any) -> str:
    return _FINISH.get(reason, "stop")


def completion_id(cohere_id: Any) -> str:
    if isinstance(cohere_id, str) and cohere_id:
        return "chatcmpl-" + cohere_id
    return "chatcmpl-" + secrets.token_hex(12)


def _count(units: Any, name: str) -> int | None:
    if not isinstance(units, Mapping):
        return None
    value = units.get(name)
    return int(value) if isinstance(value, int | float) else None


def openai_usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, Mapping):
        return None
    tokens, billed = usage.get("tokens"), usage.get("billed_units")
    prompt = _count(tokens, "input_tokens")
    if prompt is None:
        prompt = _count(billed, "input_tokens")
    completion = _count(tokens, "output_tokens")
    if completion is None:
        completion = _count(billed, "output_tokens")
    if prompt is None and completion is None:
        return None
    out: dict[str, Any] = {
        "prompt_tokens": prompt or 0,
        "completion_tokens": completion or 0,
        "total_tokens": (prompt or 0) + (completion or 0),
    }
    cached = usage.get("cached_tokens")
    if isinstance(cached, int | float) and cached:
        out["prompt_tokens_details"] = {"cached_tokens": int(cached)}
    return out


def decode(payload: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise UpstreamError("Cohere answered with a body that is not a JSON object.")
    return answer


def chat_completion(answer: Mapping[str, Any], model: str) -> dict[str, Any]:
    reason = answer.get("finish_reason")
    if reason in FAILED:
        raise UpstreamError(f"Cohere ended the generation with {reason}.")
    message = answer.get("message")
    if not isinstance(message, Mapping):
        message = {}
    texts = [
        part.get("text", "")
        for part in message.get("content") or ()
        if isinstance(part, Mapping) and part.get("type") == "text"
    ]
    content = "".join(texts) if texts else message.get("tool_plan") or None
    out_message: dict[str, Any] = {"role": "assistant", "content": content}
    calls = [
        _tool_call(call) for call in message.get("tool_calls") or () if isinstance(call, Mapping)
    ]
    if calls:
        out_message["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": completion_id(answer.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": out_message,
                "finish_reason": "tool_calls" if calls else finish_reason(reason),
            }
        ],
    }
    usage = openai_usage(answer.get("usage"))
    if usage is not None:
        out["usage"] = usage
    return out


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, Mapping):
        function = {}
    call_id = call.get("id")
    return {
        "id": call_id if isinstance(call_id, str) and call_id else "call_" + secrets.token_hex(12),
        "type": "function",
        "function": {
            "name": function.get("name", ""),
            "arguments": function.get("arguments") or "{}",
        },
    }


def embeddings(answer: Mapping[str, Any], model: str) -> dict[str, Any]:
    found = answer.get("embeddings")
    vectors = found.get("float") if isinstance(found, Mapping) else None
    if not isinstance(vectors, list):
        raise UpstreamError("Cohere answered an embeddings call without float embeddings.")
    meta = answer.get("meta")
    billed = meta.get("billed_units") if isinstance(meta, Mapping) else None
    tokens = _count(billed, "input_tokens") or 0
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
