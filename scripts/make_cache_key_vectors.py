"""Regenerate tests/vectors/cache_keys.json from hand-written canonical forms.

The canonical forms below are written out by hand (RFC 8785 layout, exact numbers, see
docs/native.md); the keys are sha256(CACHE_KEY_VERSION NUL namespace NUL canonical), computed here
with hashlib, independently of fd2._native. Once released, these must never change: a change to
canonicalisation bumps CACHE_KEY_VERSION instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

VERSION = "fd2-cache-key/v1"
OUT = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "cache_keys.json"

CASES = [
    ("empty object", "{}", [], "", "{}"),
    (
        "chat request",
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}',
        [],
        "",
        '{"messages":[{"content":"hi","role":"user"}],"model":"gpt-4o"}',
    ),
    (
        "excluded fields",
        '{"stream":true,"user":"u-1","model":"m","stream_options":{"include_usage":true}}',
        ["stream", "stream_options", "user"],
        "",
        '{"model":"m"}',
    ),
    (
        "namespace",
        '{"model":"m"}',
        [],
        "acme/chat",
        '{"model":"m"}',
    ),
    (
        "numbers",
        "[1.0, 1e2, -0, 0.1, 1E21, 1e-7, 0.000001, 4.50, 123456789012345678901234, 12e-1]",
        [],
        "",
        "[1,100,0,0.1,1e+21,1e-7,0.000001,4.5,1.23456789012345678901234e+23,1.2]",
    ),
    (
        "strings",
        '["\\u00e9\\/", "tab\\there", "\\u001f", "\\ud83d\\ude00", "quote\\"back\\\\"]',
        [],
        "",
        '["é/","tab\\there","\\u001f","😀","quote\\"back\\\\"]',
    ),
    (
        "utf16 order",
        '{"\\ufb01":1,"\\ud83d\\ude00":2,"b":3,"a":{"z":true,"y":null}}',
        [],
        "",
        '{"a":{"y":null,"z":true},"b":3,"😀":2,"ﬁ":1}',
    ),
]


def main() -> None:
    vectors = []
    for label, body, exclude, namespace, canonical in CASES:
        prefix = f"{VERSION}\0{namespace}\0".encode()
        key = hashlib.sha256(prefix + canonical.encode()).hexdigest()
        vectors.append(
            {
                "label": label,
                "body": body,
                "exclude": exclude,
                "namespace": namespace,
                "canonical": canonical,
                "key": key,
            }
        )
    OUT.write_text(json.dumps(vectors, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
