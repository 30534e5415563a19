"""Bedrock answers in OpenAI's shapes (pure): Converse -> `chat.completion`, Titan embeddings ->
`list` of `embedding`, and the usage and finish reasons both the answer and the stream use."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from fd2_inference.providers.bedrock_request import ANSWER_TOOL_PREFIX

FINISH_REASONS: Final[dict[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: Any, *, answered_by_tool: bool) -> str:
    """OpenAI's finish reason for Converse's `stopReason`. A forced answer tool's call is the
    answer itself: the model stopped because it was done, not to have a tool run."""
    reason = FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if answered_by_tool and reason == "tool_calls":
        return "stop"
    return reason


def usage(raw: Any) -> dict[str, Any] | None:
    """Converse `usage` as OpenAI's: Bedrock counts cache reads and writes apart from
    `inputTokens`, OpenAI's `prompt_tokens` includes them (cached ones detailed)."""
    if not isinstance(raw, dict):
        return None
    fresh = int(raw.get("inputTokens") or 0)
    cache_read = int(raw.get("cacheReadInputTokens") or 0)
    cache_write = int(raw.get("cacheWriteInputTokens") or 0)
    completion = int(raw.get("outputTokens") or 0)
    prompt = fresh + cache_read + cache_write
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read or "cacheReadInputTokens" in raw:
        out["prompt_tokens_details"] = {"cached_tokens": cache_read}
    return out


def completion_id() -> str:
    # Converse answers carry no id of their own (only the x-amzn-requestid header).
    return f"chatcmpl-{uuid.uuid4().hex}"


def is_answer_tool(name: Any) -> bool:
    return isinstance(name, str) and name.startswith(ANSWER_TOOL_PREFIX)


def chat_completion(payload: bytes, *, model: str) -> dict[str, Any]:
    answer = orjson.loads(payload)
    content = answer["output"]["message"]["content"]
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    answered_by_tool = False
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input", {})).decode()
            if is_answer_tool(use.get("name")):
                answered_by_tool = True
                texts.append(arguments)
                continue
            tool_calls.append(
                {
                    "id": use["toolUseId"],
                    "type": "function",
                    "function": {"name": use["name"], "arguments": arguments},
                }
            )
        # reasoningContent and other blocks have no place in a chat.completion message.
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    result: dict[str, Any] = {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(
                    answer.get("stopReason"), answered_by_tool=answered_by_tool
                ),
            }
        ],
    }
    counted = usage(answer.get("usage"))
    if counted is not None:
        result["usage"] = counted
    return result


# --- embeddings (Titan: one text per call)


def titan_body(text: str, body: Mapping[str, Any]) -> bytes:
    request: dict[str, Any] = {"inputText": text}
    if body.get("dimensions") is not None:
        request["dimensions"] = body["dimensions"]
    return orjson.dumps(request)


def embeddings_list(payloads: Sequence[bytes], *, model: str) -> dict[str, Any]:
    """Titan answers (one per input, in input order) as one OpenAI embeddings list."""
    data = []
    tokens = 0
    for index, payload in enumerate(payloads):
        answer = orjson.loads(payload)
        vector = answer["embedding"]
        if not isinstance(vector, list):
            raise TypeError("embedding is not a list")
        data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens += int(answer.get("inputTextTokenCount") or 0)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
