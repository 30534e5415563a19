"""OpenAI chat answers and fd2 errors -> Anthropic's message object and error shape (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

STOP_REASONS: Final = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# fd2's status -> Anthropic's error type (what the `anthropic` SDK shows as `error.type`).
_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def stop_reason(finish_reason: object) -> str:
    return (
        STOP_REASONS.get(finish_reason, "end_turn")
        if isinstance(finish_reason, str)
        else "end_turn"
    )


def message_id(openai_id: object, request_id: str) -> str:
    if isinstance(openai_id, str) and openai_id:
        return openai_id if openai_id.startswith("msg_") else f"msg_{openai_id}"
    return f"msg_{request_id}"


def anthropic_usage(usage: object, prompt_estimate: int = 0) -> dict[str, int]:
    """Anthropic's usage from OpenAI's: `input_tokens` excludes the cached part, which Anthropic
    reports apart (`cache_read_input_tokens`)."""
    if not isinstance(usage, Mapping):
        return {"input_tokens": prompt_estimate, "output_tokens": 0}
    prompt = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    cached = min(cached, prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": _count(usage.get("completion_tokens")),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def tool_input(arguments: object) -> dict[str, Any]:
    """A tool call's `arguments` (a JSON string) as the input object Anthropic sends."""
    if isinstance(arguments, str) and arguments.strip():
        try:
            value = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        return {"arguments": arguments}  # not an object: kept whole rather than lost
    return {}


def anthropic_message(completion: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, Mapping) else None
    message = message if isinstance(message, Mapping) else {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{request_id}_{len(content)}",
                "name": function.get("name"),
                "input": tool_input(function.get("arguments")),
            }
        )
    finish = choice.get("finish_reason") if isinstance(choice, Mapping) else None
    return {
        "id": message_id(completion.get("id"), request_id),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model"),
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, request_id: str) -> bytes:
    """Anthropic's error object, as an answer's body and as a stream's `error` event."""
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type(status), "message": message},
            "request_id": request_id,
        }
    )
