"""The cache in Redis: entries under `fd2:cache:<project>:<module>:<environment>:<model>:<key>`,
a short lock per key while one caller fetches the answer, deletion by pattern with SCAN.

Redis is a cache here, never a dependency of an answer: a command that fails or times out is a
miss (or a store skipped), logged once per cause, and the request is served from upstream.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

from fd2.telemetry.log_throttle import ThrottledLog

if TYPE_CHECKING:
    from redis.asyncio import Redis

PREFIX: Final = "fd2:cache:"
LOCK_PREFIX: Final = "fd2:cache-lock:"
_SCAN_COUNT: Final = 500
_DELETE_BATCH: Final = 500
_log = logging.getLogger("fd2.cache")
_throttled = ThrottledLog(_log)
# Glob characters Redis reads in a MATCH pattern: escaped in the parts a caller does not choose.
_GLOB: Final = re.compile(r"([\\*?\[\]])")

# Releases the lock only if it is still ours (it may have expired and been taken by another).
_UNLOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def escape(part: str) -> str:
    """`part` as a literal inside a Redis MATCH pattern."""
    return _GLOB.sub(r"\\\1", part)


class CacheStore:
    """One worker's view of the cache (shared by all its routes)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._unlock: Any = redis.register_script(_UNLOCK)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(key)
        except Exception as exc:  # a cache that cannot answer is a miss
            _failed("read", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self._redis.set(key, value, px=max(1, int(ttl_s * 1000)))
        except Exception as exc:
            _failed("write", exc)

    async def lock(self, key: str, lock_s: float) -> str | None:
        """A token if this caller now fetches the answer for `key` (None: another one does).
        Without a usable Redis every caller fetches for itself."""
        token = secrets.token_hex(8)
        try:
            taken = await self._redis.set(
                LOCK_PREFIX + key, token, nx=True, px=max(1, int(lock_s * 1000))
            )
        except Exception as exc:
            _failed("lock", exc)
            return token
        return token if taken else None

    async def unlock(self, key: str, token: str) -> None:
        try:
            await self._unlock(keys=[LOCK_PREFIX + key], args=[token])
        except Exception as exc:
            _failed("unlock", exc)

    async def wait(self, key: str, lock_s: float, poll_s: float = 0.02) -> bytes | None:
        """The entry another caller is fetching, once stored; None when its lock ends (or
        `lock_s` passes) without one."""
        deadline = time.monotonic() + lock_s
        while time.monotonic() < deadline:
            await asyncio.sleep(poll_s)
            try:
                value, locked = await self._redis.mget(key, LOCK_PREFIX + key)
            except Exception as exc:
                _failed("read", exc)
                return None
            if isinstance(value, bytes):
                return value
            if locked is None:
                return None
        return None

    async def delete(self, pattern: str) -> int:
        """Deletes the entries whose key matches `pattern` (a Redis glob, already scoped by the
        caller); SCAN, never KEYS, so a large cache does not stall Redis."""
        deleted = 0
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=pattern, count=_SCAN_COUNT):
            batch.append(key)
            if len(batch) >= _DELETE_BATCH:
                deleted += await self._redis.unlink(*batch)
                batch = []
        if batch:
            deleted += await self._redis.unlink(*batch)
        return deleted


def _failed(what: str, exc: Exception) -> None:
    _throttled.warning(
        f"cache-{what}",
        "response cache: Redis %s failed (%s); served uncached",
        what,
        type(exc).__name__,
    )
