"""Token usage fd2 works out itself: a request's prompt tokens, and the `usage` chunk a stream
gets when the client asked for usage (`stream_options.include_usage`) and the upstream sent none.

Counts use OpenAI's encodings through fd2.tokens (the model's family picks the encoding, unknown
models count with o200k_base). Completion tokens are counted from the text the stream generated
(content, refusals, tool-call names and arguments), so they match what OpenAI bills for plain
text answers and are a close estimate for tool calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import orjson

from fd2.sse import SseFramer
from fd2.tokens import count_chat, count_prompt, count_tokens, encoding_for_model

# Counting larger inputs than this runs in a worker thread (the native code releases the GIL),
# so a huge prompt never stalls the event loop; smaller ones take well under a millisecond.
_THREAD_FROM_CHARS: Final = 64 * 1024


class UsagePlan:
    """What a stream needs to add a `usage` chunk of its own: the prompt's token count and the
    encoding to count the completion with."""

    __slots__ = ("chat", "encoding", "model", "prompt_tokens")

    def __init__(self, prompt_tokens: int, encoding: str, model: str, chat: bool) -> None:
        self.prompt_tokens = prompt_tokens
        self.encoding = encoding
        self.model = model
        self.chat = chat


def wants_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def prompt_tokens(payload: dict[str, Any], encoding: str, chat: bool) -> int:
    """Prompt tokens of a chat/completions or completions request, as OpenAI counts them."""
    if chat:
        messages = payload.get("messages")
        return count_chat(messages if isinstance(messages, list) else [], encoding)
    return count_prompt(payload.get("prompt"), encoding)


async def plan_usage(payload: dict[str, Any], body_size: int, chat: bool) -> UsagePlan:
    """Counts the prompt before the request is sent (off the event loop when it is large)."""
    model = payload.get("model")
    model = model if isinstance(model, str) else ""
    encoding = encoding_for_model(model)
    if body_size >= _THREAD_FROM_CHARS:
        count = await asyncio.to_thread(prompt_tokens, payload, encoding, chat)
    else:
        count = prompt_tokens(payload, encoding, chat)
    return UsagePlan(count, encoding, model, chat)


async def usage_event(plan: UsagePlan, framer: SseFramer, request_id: str) -> bytes:
    """The `usage` chunk OpenAI would have sent last, from what the stream carried."""
    text = framer.text
    if len(text) >= _THREAD_FROM_CHARS:
        completion = await asyncio.to_thread(count_tokens, text, plan.encoding)
    else:
        completion = count_tokens(text, plan.encoding)
    prefix, kind = (
        ("chatcmpl", "chat.completion.chunk") if plan.chat else ("cmpl", "text_completion")
    )
    chunk = {
        "id": framer.response_id or f"{prefix}-{request_id}",
        "object": kind,
        "created": framer.created if framer.created is not None else int(time.time()),
        "model": framer.model or plan.model,
        "choices": [],
        "usage": {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": plan.prompt_tokens + completion,
        },
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
