"""Prompt tokens of a request, counted with OpenAI's encodings (fd2._native) before the upstream
call, so token limits reserve what the request really costs; usage reported afterwards settles
the reservation."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fd2.tokens import count_chat, count_prompt, encoding_for_model

# Above this much text the count runs in a thread (the native counter releases the GIL), so a
# large prompt does not hold up the event loop; below it a thread hop costs more than counting.
_OFFLOAD_CHARS: Final = 64 * 1024


async def count_prompt_tokens(payload: dict[str, Any]) -> int:
    """Tokens of `messages` (chat) or `prompt`/`input` (completions, embeddings)."""
    model = payload.get("model")
    encoding = encoding_for_model(model if isinstance(model, str) else "")
    messages = payload.get("messages")
    if isinstance(messages, list):
        if _text_size(messages) > _OFFLOAD_CHARS:
            return await asyncio.to_thread(count_chat, messages, encoding)
        return count_chat(messages, encoding)
    text = payload.get("prompt", payload.get("input"))
    if isinstance(text, list) and text and all(isinstance(item, int) for item in text):
        return len(text)  # one pre-tokenised prompt
    if isinstance(text, list) and all(
        isinstance(item, list) and all(isinstance(token, int) for token in item) for item in text
    ):
        return sum(len(item) for item in text)  # a batch of pre-tokenised prompts
    if _text_size(text) > _OFFLOAD_CHARS:
        return await asyncio.to_thread(count_prompt, text, encoding)
    return count_prompt(text, encoding)


def warm_up(model: str = "") -> None:
    """Builds the encoder a model uses (~0.2 s, once per process): call it off the event loop
    at start-up so the first limited request does not pay for it."""
    count_prompt("warm", encoding_for_model(model))


def _text_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_size(item) for item in value)
    if isinstance(value, dict):
        return sum(_text_size(item) for item in value.values())
    return 0
