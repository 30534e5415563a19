"""The prompt-token estimate used to reserve tokens before an upstream call.

The one place to switch to `fd2._native` token counting once it lands: reservations are
reconciled with the upstream's reported usage afterwards, so an estimate only has to be close.
"""

from __future__ import annotations

from typing import Any, Final

_CHARS_PER_TOKEN: Final = 4
_PER_MESSAGE: Final = 4


def estimate_prompt_tokens(payload: dict[str, Any]) -> int:
    """About one token per 4 characters of text, plus a few per chat message."""
    messages = payload.get("messages")
    if isinstance(messages, list):
        chars = 0
        for message in messages:
            if isinstance(message, dict):
                chars += _text_length(message.get("content"))
        return chars // _CHARS_PER_TOKEN + _PER_MESSAGE * len(messages)
    return _text_length(payload.get("prompt", payload.get("input"))) // _CHARS_PER_TOKEN + 1


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        total = 0
        for part in value:
            if isinstance(part, str):
                total += len(part)
            elif isinstance(part, dict):
                text = part.get("text")
                total += len(text) if isinstance(text, str) else 0
            elif isinstance(part, int):
                total += _CHARS_PER_TOKEN  # a pre-tokenised prompt: one token per entry
        return total
    return 0
