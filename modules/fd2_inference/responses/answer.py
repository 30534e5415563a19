"""A chat completion as a Responses API `response` object (pure)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def message_item(text: str, item_id: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def call_item(call: Mapping[str, Any], item_id: str, status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": str(call.get("id") or new_id("call")),
        "name": str(function.get("name", "")),
        "arguments": str(function.get("arguments") or ""),
        "status": status,
    }


def output_items(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The output items of a chat answer's message: its text, then its tool calls."""
    items: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str) and (content or not message.get("tool_calls")):
        items.append(message_item(content, new_id("msg")))
    items.extend(call_item(call, new_id("fc")) for call in message.get("tool_calls") or ())
    return items


def usage(chat_usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not chat_usage:
        return None
    prompt = int(chat_usage.get("prompt_tokens") or 0)
    completion = int(chat_usage.get("completion_tokens") or 0)
    cached = int((chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int(
        (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    )
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def incomplete(finish_reason: Any) -> dict[str, str] | None:
    if finish_reason == "length":
        return {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return {"reason": "content_filter"}
    return None


def skeleton(
    body: Mapping[str, Any], response_id: str, model: str, *, store: bool
) -> dict[str, Any]:
    """The response object before any output (the stream's `response.created`)."""
    text = body.get("text") if isinstance(body.get("text"), dict) else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt": body.get("prompt"),
        "reasoning": {"effort": None, "summary": None},
        "store": store,
        "temperature": body.get("temperature"),
        "text": text or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": body.get("truncation") or "disabled",
        "usage": None,
        "user": body.get("user"),
    }


def finished(
    response: dict[str, Any],
    output: Sequence[Mapping[str, Any]],
    finish_reason: Any,
    chat_usage: Mapping[str, Any] | None,
) -> dict[str, Any]:
    details = incomplete(finish_reason)
    response["status"] = "incomplete" if details else "completed"
    response["incomplete_details"] = details
    response["output"] = list(output)
    response["usage"] = usage(chat_usage)
    return response


def from_chat(
    body: Mapping[str, Any], answer: Mapping[str, Any], response_id: str, *, store: bool
) -> dict[str, Any]:
    """The whole `response` object for a chat completion."""
    choices = answer.get("choices") or [{}]
    choice = choices[0]
    model = str(answer.get("model") or body.get("model") or "")
    response = skeleton(body, response_id, model, store=store)
    return finished(
        response,
        output_items(choice.get("message") or {}),
        choice.get("finish_reason"),
        answer.get("usage"),
    )


def history_messages(output: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A response's output as the chat messages a later turn sends back."""
    messages: list[dict[str, Any]] = []
    text = "".join(
        part.get("text", "")
        for item in output
        if item.get("type") == "message"
        for part in item.get("content", ())
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item.get("type") == "function_call"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    if text or calls:
        messages.append(message)
    return messages
