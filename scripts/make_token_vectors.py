# ruff: noqa: RUF001 - the vectors deliberately hold non-Latin look-alike letters
"""Regenerate tests/vectors/tokens.json: reference token ids from OpenAI's `tiktoken`.

Run: `.venv/bin/python scripts/make_token_vectors.py` (needs the `tiktoken` dev dependency; it
reads the rank files embedded in fd2._native after checking them against tiktoken's hashes).
Chat counts follow OpenAI's cookbook: 3 tokens per message, +1 for a name, 3 to prime the reply.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "micro"))

from tiktoken_local import ENCODINGS, rank_file, tiktoken_encoding  # noqa: E402

OUT = ROOT / "tests" / "vectors" / "tokens.json"


def long_text() -> str:
    rng = random.Random(4)  # noqa: S311 - fixed seed: the vectors must not change between runs
    words = ["gateway", "token", "stream", "the", "of", "Überprüfung", "naïve", "42", "3.14159"]
    return " ".join(rng.choice(words) for _ in range(3000)) + ".\n"


TEXTS: dict[str, str] = {
    "empty": "",
    "short": "hello world",
    "sentence": "The quick brown fox jumps over the lazy dog.",
    "contractions": "I'll've done it; HE'S sure they'd've WE'RE",
    "numbers": "1234567890 3.14159 -42 1e10 0x1F 10,000,000",
    "code": 'def f(x):\n\treturn {"a": [x, x**2]}  # ok\n',
    "long": long_text(),
    "chinese": "我们的网关统计每个请求的令牌数。",
    "japanese": "東京は日本の首都です。カタカナとひらがな。",
    "korean": "안녕하세요, 세계!",
    "arabic": "مرحبا بالعالم، هذا اختبار.",
    "hindi": "नमस्ते दुनिया, यह एक परीक्षण है।",
    "cyrillic": "Привет, мир! Ёлка и щука.",
    "greek": "Γειά σου Κόσμε",
    "emoji": "🙂🚀 thumbs 👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 ❤️",
    "spaces_run": "a" + " " * 100 + "b",
    "trailing_spaces": "end   ",
    "newlines_run": "x\n\n\n\n\ny\r\n\r\nz",
    "tabs_and_mixed": "\t\t  \n \t x \u00a0\u2003y",
    "long_whitespace": " " * 5000,
    "special_endoftext": "<|endoftext|>",
    "special_mixed": "before <|endofprompt|> <|fim_prefix|><|fim_middle|><|fim_suffix|> after",
    "special_chatml": "<|im_start|>user\nhi<|im_end|>",
    "lone_combining": "e\u0301 n\u0303 a\u0308",
}

CHATS: dict[str, list[dict[str, Any]]] = {
    "simple": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello!"},
    ],
    "named": [
        {"role": "system", "name": "example_user", "content": "New synergies will help."},
        {"role": "user", "name": "alice", "content": "Résumé, s'il vous plaît 🙂"},
        {"role": "assistant", "content": "<|endoftext|> is just text here."},
    ],
    "parts": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "first part"},
                {"type": "text", "text": "第二部分"},
            ],
        },
    ],
}


def chat_count(encoding: Any, messages: list[dict[str, Any]]) -> int:
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        total += 3
        for key, value in message.items():
            if isinstance(value, str):
                total += len(encoding.encode(value, disallowed_special=()))
            else:  # content parts: their text
                total += sum(
                    len(encoding.encode(part["text"], disallowed_special=())) for part in value
                )
            if key == "name":
                total += 1
    return total


def main() -> None:
    vectors: dict[str, Any] = {"rank_files": {}, "texts": [], "chats": []}
    for name in ENCODINGS:
        encoding = tiktoken_encoding(name)  # checks the file's hash against tiktoken's
        vectors["rank_files"][name] = rank_file(name).name
        for label, text in TEXTS.items():
            ids = encoding.encode(text, disallowed_special=())
            vectors["texts"].append({"encoding": name, "label": label, "text": text, "ids": ids})
        for label, messages in CHATS.items():
            count = chat_count(encoding, messages)
            vectors["chats"].append(
                {"encoding": name, "label": label, "messages": messages, "tokens": count}
            )
    # One entry per line: reviewable diffs without one line per token id.
    lines = ['{"rank_files": ' + json.dumps(vectors["rank_files"]) + ","]
    for section in ("texts", "chats"):
        entries = [json.dumps(entry, ensure_ascii=False) for entry in vectors[section]]
        lines.append(
            f'"{section}": [\n' + ",\n".join(entries) + "\n]" + ("," if section == "texts" else "")
        )
    OUT.write_text("\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(vectors['texts'])} texts")


if __name__ == "__main__":
    main()
