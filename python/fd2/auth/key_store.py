"""API key records kept in Redis (`fd2:apikey:<hex digest>` → the record as JSON).

For keys issued after a manifest was written, or too many to list in one. Lookups are cached
for `ttl_s` (found and not found alike), so a key costs one Redis round trip per worker per TTL,
and a revoked key (its record deleted) stops working within the TTL.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import msgspec

from fd2.auth.api_keys import ApiKey, ApiKeyRecord
from fd2.serving.errors import ConfigError, ServiceUnavailable

PREFIX: Final = "fd2:apikey:"
_MAX_ENTRIES: Final = 10_000
_log = logging.getLogger("fd2.auth")


class RedisKeyStore:
    def __init__(self, redis: Any, *, ttl_s: float = 30.0) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._cache: dict[bytes, tuple[float, ApiKey | None]] = {}

    async def find(self, digest: bytes) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            raw = await self._redis.get(PREFIX + digest.hex())
        except Exception as exc:  # Redis down: the key cannot be checked either way
            _log.warning("API key lookup in Redis failed: %s", type(exc).__name__)
            raise ServiceUnavailable(
                "Credentials cannot be checked right now; try again shortly."
            ) from None
        key = self._decode(raw, digest) if raw is not None else None
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache = {d: e for d, e in self._cache.items() if e[0] > now}
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
        self._cache[digest] = (now + self._ttl_s, key)
        return key

    @staticmethod
    def _decode(raw: bytes, digest: bytes) -> ApiKey | None:
        try:
            record = msgspec.json.decode(raw, type=ApiKeyRecord, strict=False)
            if record.project is None or record.disabled:
                return None
            key = ApiKey(record, record.project)
        except (msgspec.DecodeError, ConfigError):
            _log.error("API key record %s… in Redis is malformed", digest.hex()[:8])
            return None
        # The record must describe the key it is stored under.
        return key if key.digest == digest else None
