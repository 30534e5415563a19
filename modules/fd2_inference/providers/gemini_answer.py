"""Gemini's answers (`GenerateContentResponse`, embeddings) in OpenAI's shapes.

Thought parts (`"thought": true`, a thinking model's summaries) are left out of the message:
OpenAI's chat completion has no place for them; the tokens they cost are reported as
`reasoning_tokens`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2.serving.errors import UpstreamError
from fd2_inference.providers.gemini_ids import new_call_id, new_completion_id

_FINISH: Final = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def finish_reason(reason: Any, tool_calls: bool) -> str:
    """OpenAI's finish reason for Gemini's. A turn that called functions ends with STOP at
    Gemini and `tool_calls` at OpenAI. Reasons with no OpenAI counterpart (LANGUAGE, OTHER,
    MALFORMED_FUNCTION_CALL, ...) read as `stop`: the answer ended and nothing was cut."""
    mapped = _FINISH.get(reason, "stop")
    return "tool_calls" if tool_calls and mapped == "stop" else mapped


def openai_usage(meta: Any) -> dict[str, Any] | None:
    """`usageMetadata` as OpenAI usage. Gemini's prompt count includes cached tokens (as
    OpenAI's does); thinking tokens are billed as output, so they count in completion tokens."""
    if not isinstance(meta, Mapping):
        return None
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(meta.get("totalTokenCount") or prompt + completion),
    }
    cached = meta.get("cachedContentTokenCount")
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": int(cached)}
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def tool_call(part: Mapping[str, Any], index: int | None = None) -> dict[str, Any] | None:
    """A `functionCall` part as an OpenAI tool call (with `index` for a stream delta)."""
    call = part.get("functionCall")
    if not isinstance(call, Mapping):
        return None
    signature = part.get("thoughtSignature")
    out: dict[str, Any] = {} if index is None else {"index": index}
    out["id"] = new_call_id(signature if isinstance(signature, str) else None)
    out["type"] = "function"
    args = call.get("args")
    out["function"] = {
        "name": call.get("name", ""),
        "arguments": orjson.dumps(args if args is not None else {}).decode(),
    }
    return out


def visible_text(part: Mapping[str, Any]) -> str | None:
    text = part.get("text")
    if not isinstance(text, str) or part.get("thought"):
        return None
    return text


def decode(payload: bytes) -> dict[str, Any]:
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise UpstreamError("Gemini answered with a body that is not a JSON object.")
    return answer


def chat_completion(answer: Mapping[str, Any], model: str) -> dict[str, Any]:
    choices = [_choice(candidate, i) for i, candidate in enumerate(answer.get("candidates") or [])]
    if not choices and _blocked(answer):
        # The prompt itself was blocked: no candidate at all.
        choices = [_empty_choice(0, "content_filter")]
    out: dict[str, Any] = {
        "id": new_completion_id(answer.get("responseId")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    usage = openai_usage(answer.get("usageMetadata"))
    if usage is not None:
        out["usage"] = usage
    return out


def _blocked(answer: Mapping[str, Any]) -> bool:
    feedback = answer.get("promptFeedback")
    return isinstance(feedback, Mapping) and bool(feedback.get("blockReason"))


def _empty_choice(index: int, reason: str) -> dict[str, Any]:
    return {
        "index": index,
        "message": {"role": "assistant", "content": None},
        "finish_reason": reason,
    }


def _choice(candidate: Mapping[str, Any], position: int) -> dict[str, Any]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts or ():
        if not isinstance(part, Mapping):
            continue
        text = visible_text(part)
        if text is not None:
            texts.append(text)
        call = tool_call(part)
        if call is not None:
            calls.append(call)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    index = candidate.get("index")
    return {
        "index": index if isinstance(index, int) else position,
        "message": message,
        "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
    }


def embeddings(answer: Mapping[str, Any], model: str) -> dict[str, Any]:
    """`:embedContent` (`embedding`) or `:batchEmbedContents` (`embeddings`) as an OpenAI list,
    usage from its `usageMetadata.promptTokenCount` (zero from the API versions without it)."""
    found = answer.get("embeddings")
    if found is None and "embedding" in answer:
        found = [answer["embedding"]]
    if not isinstance(found, list):
        raise UpstreamError("Gemini answered an embeddings call without embeddings.")
    data = [
        {"object": "embedding", "index": i, "embedding": item.get("values", [])}
        for i, item in enumerate(found)
        if isinstance(item, Mapping)
    ]
    usage = openai_usage(answer.get("usageMetadata")) or {"prompt_tokens": 0, "total_tokens": 0}
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": usage["prompt_tokens"], "total_tokens": usage["prompt_tokens"]},
    }
