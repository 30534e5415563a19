"""Token counting with OpenAI's encodings (o200k_base, cl100k_base), done natively.

Counts equal OpenAI's `tiktoken` (checked against its output in tests/vectors/tokens.json).
Text that looks like a special token (`<|endoftext|>`) is counted as plain text, as an API
request's content is. The encoder of an encoding is built on its first use (~0.2 s), once per
process; importing this module does no work.

How a provider's request turns into text to count (OpenAI's chat messages, for one) is the
module's rule, not the core's: see `fd2_inference.metering`.
"""

from __future__ import annotations

from fd2._native import (
    UnknownEncoding,
    count_tokens,
    count_tokens_all,
    decode_tokens,
    encode,
    encoding_for_model,
    encoding_loaded,
)

__all__ = [
    "UnknownEncoding",
    "count_prompt",
    "count_tokens",
    "count_tokens_all",
    "decode_tokens",
    "encode",
    "encoding_for_model",
    "encoding_loaded",
]


def count_prompt(prompt: object, encoding: str = "o200k_base") -> int:
    """Tokens of a text or a list of texts (anything else, token ids included, counts 0)."""
    if isinstance(prompt, str):
        return count_tokens(prompt, encoding)
    if isinstance(prompt, list):
        return count_tokens_all([item for item in prompt if isinstance(item, str)], encoding)
    return 0
