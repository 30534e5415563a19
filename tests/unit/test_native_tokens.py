"""fd2.tokens / fd2._native token counting against OpenAI's tiktoken (vectors and live checks)."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd2.serving.errors import Fd2Error
from fd2.tokens import (
    UnknownEncoding,
    count_prompt,
    count_tokens,
    count_tokens_all,
    decode_tokens,
    encode,
    encoding_for_model,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "micro"))
from tiktoken_local import rank_file, tiktoken_encoding  # noqa: E402

VECTORS = json.loads((ROOT / "tests" / "vectors" / "tokens.json").read_text(encoding="utf-8"))
TEXTS: list[dict[str, Any]] = VECTORS["texts"]


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_embedded_ranks_are_the_files_openai_publishes(name: str) -> None:
    import tiktoken_ext.openai_public as public

    source = inspect.getsource(getattr(public, name))
    expected = re.search(r'expected_hash="([0-9a-f]{64})"', source)
    assert expected is not None
    assert hashlib.sha256(rank_file(name).read_bytes()).hexdigest() == expected.group(1)


@pytest.mark.parametrize("case", TEXTS, ids=lambda c: f"{c['encoding']}-{c['label']}")
def test_ids_match_the_vectors(case: dict[str, Any]) -> None:
    text, ids, encoding = case["text"], case["ids"], case["encoding"]
    assert encode(text, encoding) == ids
    assert count_tokens(text, encoding) == len(ids)
    assert decode_tokens(ids, encoding) == text.encode()


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), encoding=st.sampled_from(["o200k_base", "cl100k_base"]))
def test_any_text_encodes_like_tiktoken(text: str, encoding: str) -> None:
    reference = tiktoken_encoding(encoding).encode(text, disallowed_special=())
    assert encode(text, encoding) == reference


def test_counts_of_many_texts_add_up() -> None:
    texts = ["Hello there", "¿Qué tal? 你好 🙂", "", "<|endoftext|>"]
    assert count_tokens_all(texts) == sum(count_tokens(t) for t in texts)
    assert count_prompt(texts, "cl100k_base") == count_tokens_all(texts, "cl100k_base")
    assert count_prompt("x y", "cl100k_base") == count_tokens("x y", "cl100k_base")
    assert count_prompt([1, 2, 3]) == 0  # token ids: nothing to count


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-5-nano", "o200k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("text-embedding-3-large", "cl100k_base"),
        ("mistral-large", "o200k_base"),  # unknown: the documented fallback
        ("", "o200k_base"),
    ],
)
def test_model_families(model: str, encoding: str) -> None:
    assert encoding_for_model(model) == encoding


def test_unknown_encoding_is_an_fd2_error() -> None:
    with pytest.raises(UnknownEncoding, match="p50k_base"):
        count_tokens("x", "p50k_base")
    assert issubclass(UnknownEncoding, Fd2Error)
    with pytest.raises(UnknownEncoding):
        decode_tokens([10**9])


def test_large_text_counts_like_tiktoken() -> None:
    # Large enough to be counted with the GIL released.
    text = "Tokens, tokens everywhere; 数字 1234567 and emoji 🙂. " * 2000
    reference = tiktoken_encoding("o200k_base").encode(text, disallowed_special=())
    assert count_tokens(text) == len(reference)


def test_import_builds_no_encoder() -> None:
    # A fresh interpreter: importing the extension (and fd2.tokens) does no tokenizer work.
    probe = (
        "import fd2.tokens as t; "
        "before = t.encoding_loaded('o200k_base'); t.count_tokens('x'); "
        "print(before, t.encoding_loaded('o200k_base'), t.encoding_loaded('cl100k_base'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True", "False"]
