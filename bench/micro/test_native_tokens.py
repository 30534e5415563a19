"""Token counting: fd2._native against OpenAI's tiktoken (its Rust core) and a pure-Python BPE,
all over the same o200k_base ranks. Inputs: a short chat message and a 32K-token prompt.
Every implementation's token ids are checked against tiktoken's before timing."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from python_bpe import PythonBpe
from tiktoken_local import pattern, ranks, tiktoken_encoding

from fd2.tokens import count_tokens, encode

ENCODING = "o200k_base"


def _prompt(tokens: int) -> str:
    rng = random.Random(7)
    words = ["gateway", "stream", "Überprüfung", "naïve", "42", "数据", "token", "the", "of", "🙂"]
    text = ""
    while True:
        chunk = " ".join(rng.choice(words) for _ in range(4000)) + ".\n"
        text += chunk
        if len(tiktoken_encoding(ENCODING).encode(text)) >= tokens:
            return text


TEXTS = {
    "short-message": "Hello! Could you summarise the attached report in three bullet points?",
    "32K-token-prompt": _prompt(32_000),
}


@cache
def python_bpe() -> PythonBpe:
    return PythonBpe(ranks(ENCODING), pattern(ENCODING))


IMPLS: dict[str, Callable[[str], list[int]]] = {
    "native": lambda text: encode(text, ENCODING),
    "tiktoken": lambda text: tiktoken_encoding(ENCODING).encode_ordinary(text),
    "python-bpe": lambda text: python_bpe().encode(text),
}


@pytest.mark.parametrize("case", TEXTS)
@pytest.mark.parametrize("impl", IMPLS)
def test_encode(benchmark: Any, case: str, impl: str) -> None:
    text = TEXTS[case]
    run = IMPLS[impl]
    assert run(text) == tiktoken_encoding(ENCODING).encode_ordinary(text)
    benchmark.group = f"tokens encode {case}"
    if impl == "python-bpe" and case.startswith("32K"):
        benchmark.pedantic(run, args=(text,), rounds=3, iterations=1)
    else:
        benchmark(run, text)


@pytest.mark.parametrize("case", TEXTS)
def test_count_native(benchmark: Any, case: str) -> None:
    """What fd2 calls: the count only (no list of ids crosses into Python)."""
    text = TEXTS[case]
    assert count_tokens(text, ENCODING) == len(tiktoken_encoding(ENCODING).encode_ordinary(text))
    benchmark.group = f"tokens encode {case}"
    benchmark(count_tokens, text, ENCODING)
