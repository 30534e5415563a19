"""OpenAI's encodings from local files, for reference checks and benchmarks (never at run time).

The rank files are the ones embedded in fd2._native (from the `tiktoken-rs` crate, found with
`cargo metadata`). Their SHA-256 is checked against the hash OpenAI's own `tiktoken` package
expects before anything is built from them. `tiktoken` cannot download here, so its `Encoding`
is built from these files with the pattern and special tokens of its own definition.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENCODINGS = ("o200k_base", "cl100k_base")


@cache
def rank_file(name: str) -> Path:
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--manifest-path", "rust/Cargo.toml"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    for package in json.loads(meta.stdout)["packages"]:
        if package["name"] == "tiktoken-rs":
            return Path(package["manifest_path"]).parent / "assets" / f"{name}.tiktoken"
    raise LookupError("tiktoken-rs is not a dependency of rust/Cargo.toml")


def _definition(name: str) -> dict[str, Any]:
    """tiktoken's own definition of `name`, with the rank loader pointed at the local file."""
    import tiktoken_ext.openai_public as public

    def load_local(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        data = rank_file(name).read_bytes()
        if hashlib.sha256(data).hexdigest() != expected_hash:
            raise ValueError(f"{rank_file(name)} does not match tiktoken's hash for {url}")
        return _parse(data)

    original = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = load_local  # type: ignore[assignment]
    try:
        return dict(getattr(public, name)())
    finally:
        public.load_tiktoken_bpe = original


def _parse(data: bytes) -> dict[bytes, int]:
    return {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }


@cache
def tiktoken_encoding(name: str) -> Any:
    """tiktoken.Encoding for `name` (OpenAI's Rust core), from the verified local ranks."""
    import tiktoken

    return tiktoken.Encoding(**_definition(name))


@cache
def ranks(name: str) -> dict[bytes, int]:
    """The verified mergeable ranks of `name`."""
    return dict(_definition(name)["mergeable_ranks"])


@cache
def pattern(name: str) -> str:
    return str(_definition(name)["pat_str"])
