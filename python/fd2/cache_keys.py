"""Cache keys for JSON requests: canonical JSON (RFC 8785 rules, exact numbers), SHA-256 hex.

A `CacheKeyer` is built once per route with the top-level fields to leave out and a namespace;
`key(body)` then gives 64 hex digits that are the same on every process, machine and release
with the same `CACHE_KEY_VERSION`. Which fields to leave out is the module's to say
(`Module.cache_key_ignores`: the inference module names `user`, `stream` and `stream_options`);
the core knows no provider's fields. Bodies that are not strict JSON (duplicate member names,
invalid UTF-8, lone surrogates, ...) raise `CacheKeyError`: such a request is simply not cached.
The format is in docs/native.md.
"""

from __future__ import annotations

from fd2._native import CACHE_KEY_VERSION, CacheKeyer, CacheKeyError

__all__ = ["CACHE_KEY_VERSION", "CacheKeyError", "CacheKeyer"]
