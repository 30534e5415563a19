"""Cache keys for JSON requests: canonical JSON (RFC 8785 rules, exact numbers), SHA-256 hex.

A `CacheKeyer` is built once per route with the top-level fields to leave out (e.g. `user`,
`stream`, `stream_options`) and a namespace; `key(body)` then gives 64 hex digits that are the
same on every process, machine and release with the same `CACHE_KEY_VERSION`. Bodies that are
not strict JSON (duplicate member names, invalid UTF-8, lone surrogates, ...) raise
`CacheKeyError`: such a request is simply not cached. The format is in docs/native.md.
"""

from __future__ import annotations

from typing import Final

from fd2._native import CACHE_KEY_VERSION, CacheKeyer, CacheKeyError

__all__ = ["CACHE_KEY_VERSION", "DEFAULT_EXCLUDED", "CacheKeyError", "CacheKeyer"]

# Fields that change how an answer is delivered or attributed, not what it says.
DEFAULT_EXCLUDED: Final = frozenset({"user", "stream", "stream_options"})
