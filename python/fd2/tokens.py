"""Token counting with OpenAI's encodings (o200k_base, cl100k_base), done natively.

Counts equal OpenAI's `tiktoken` (checked against its output in tests/vectors/tokens.json).
Text that looks like a special token (`<|endoftext|>`) is counted as plain text, as an API
request's content is. The encoder of an encoding is built on its first use (~0.2 s), once per
process; importing this module does no work.

Chat messages are counted the way OpenAI documents for its chat models: 3 tokens per message,
plus the tokens of each of its string values (`role`, `content`, `name`, ...), 1 more when it has
a `name`, and 3 for priming the reply. Content given as parts counts the text of its text parts
(images and audio are not counted); other structured values (`tool_calls`, ...) count the tokens
of their compact JSON, an estimate close to what the upstream sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import orjson

from fd2._native import (
    UnknownEncoding,
    count_tokens,
    count_tokens_all,
    decode_tokens,
    encode,
    encoding_for_model,
    encoding_loaded,
)
from fd2.errors import BadRequest

__all__ = [
    "TOKENS_PER_MESSAGE",
    "TOKENS_PER_NAME",
    "TOKENS_TO_PRIME_REPLY",
    "UnknownEncoding",
    "chat_texts",
    "count_chat",
    "count_prompt",
    "count_tokens",
    "count_tokens_all",
    "decode_tokens",
    "encode",
    "encoding_for_model",
    "encoding_loaded",
]

TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_NAME: Final = 1
TOKENS_TO_PRIME_REPLY: Final = 3


def chat_texts(messages: Sequence[object]) -> tuple[list[str], int]:
    """The texts of `messages` that are counted, and the fixed overhead tokens around them."""
    texts: list[str] = []
    overhead = TOKENS_TO_PRIME_REPLY
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        overhead += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "name":
                overhead += TOKENS_PER_NAME
            _collect(value, texts)
    return texts, overhead


def _collect(value: object, texts: list[str]) -> None:
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, list) and all(isinstance(part, Mapping) for part in value):
        for part in value:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") not in {"image_url", "input_audio", "file"}:
                texts.append(_compact_json(part))
    elif value is not None:
        texts.append(_compact_json(value))


def _compact_json(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # orjson reads deeper nesting (1,024 levels) than it writes (255): such a message cannot
        # be counted, nor forwarded as it is.
        raise BadRequest(
            "A message is nested too deeply to be counted.", param="messages"
        ) from None


def count_chat(messages: Sequence[object], encoding: str = "o200k_base") -> int:
    """Prompt tokens of a chat/completions `messages` list (see the module doc)."""
    texts, overhead = chat_texts(messages)
    return overhead + count_tokens_all(texts, encoding)


def count_prompt(prompt: object, encoding: str = "o200k_base") -> int:
    """Prompt tokens of a (legacy) completions `prompt`: a string or a list of strings."""
    if isinstance(prompt, str):
        return count_tokens(prompt, encoding)
    if isinstance(prompt, list):
        return count_tokens_all([item for item in prompt if isinstance(item, str)], encoding)
    return 0  # token-id prompts: the upstream counts them
