"""The meters' chat counting rule against the counts OpenAI's tiktoken gives (tests/vectors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fd2.serving.errors import BadRequest
from fd2.tokens import count_tokens
from fd2_inference.metering import count_chat

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "tokens.json"
CHATS: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))["chats"]


@pytest.mark.parametrize("case", CHATS, ids=lambda c: f"{c['encoding']}-{c['label']}")
def test_chat_counts_match_the_vectors(case: dict[str, Any]) -> None:
    assert count_chat(case["messages"], case["encoding"]) == case["tokens"]


def test_chat_overheads() -> None:
    one = [{"role": "user", "content": "hi"}]
    base = 3 + 3 + count_tokens("user") + count_tokens("hi")
    assert count_chat(one) == base
    named = [{"role": "user", "content": "hi", "name": "bob"}]
    assert count_chat(named) == base + count_tokens("bob") + 1
    assert count_chat([]) == 3


def test_a_message_too_deep_to_count_is_a_bad_request() -> None:
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    with pytest.raises(BadRequest):
        count_chat([{"role": "user", "content": {"nested": deep}}])
