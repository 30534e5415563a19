"""OpenAI's rule for the prompt tokens of chat messages, over fd2's native token counts.

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

from fd2.errors import BadRequest
from fd2.tokens import count_tokens_all

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
