"""Manifest copies and change notices shared between replicas through Redis.

Each copy a replica fetches with new content is stored under `fd2:manifest:<project>` and
published on `fd2:manifest-changes`; every replica applies what the others publish, so a change
seen (or pushed) at one replica reaches all route tables within a round trip. Redis is an
accelerator, never a dependency: while it is down each replica works from its own cache and the
Control Tower, says so once in the log, and reconnects in the background (then catches up).

It uses the worker's one Redis client (the one limits, keys and modules use); the runtime owns
and closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import msgspec
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from fd2.control.sources.cache_state import SharedCopy
from fd2.control.sources.control_tower_cache import ControlTowerCache

if TYPE_CHECKING:
    from redis.asyncio import Redis

_log = logging.getLogger("fd2.manifests.redis")
CHANNEL = "fd2:manifest-changes"
_KEY_PREFIX = "fd2:manifest:"
_RECONNECT_S = (0.2, 0.5, 1.0, 2.0, 5.0)
_decode_copy = msgspec.json.Decoder(SharedCopy)


class RedisManifestShare:
    def __init__(self, redis: Redis, cache: ControlTowerCache) -> None:
        # The shared client's short timeouts (--redis-timeout) also keep a Redis that hangs from
        # holding a cache miss for long.
        self._redis = redis
        self._cache = cache
        self._key_ttl_s = max(60, int(cache.ttl + cache.max_stale))
        self.up: bool | None = None  # None until the first connection attempt ended

    async def get(self, project: str) -> SharedCopy | None:
        if not self.up:
            return None
        try:
            data = await self._redis.get(_KEY_PREFIX + project)
        except (RedisError, OSError) as exc:
            self._down(exc)
            return None
        if data is None:
            return None
        try:
            return _decode_copy.decode(data)
        except msgspec.DecodeError:
            return None

    async def publish(self, copy: SharedCopy) -> None:
        if not self.up:
            return
        payload = msgspec.json.encode(copy)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(_KEY_PREFIX + copy.project, payload, ex=self._key_ttl_s)
                pipe.publish(CHANNEL, payload)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._down(exc)

    async def run(self) -> None:
        """Listen for other replicas' notices; reconnect with backoff whenever Redis goes away."""
        failures = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                await self._redis.ping()  # a subscription can look made with no server behind it
                self._up()
                failures = 0
                await self._catch_up()
                while True:
                    if not pubsub.subscribed or self.up is False:
                        # get_message() idles quietly on a dead subscription: reconnect instead.
                        raise RedisConnectionError("the subscription was lost")
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        await self._accept(message["data"])
            except (RedisError, OSError) as exc:
                self._down(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):  # the connection may be gone
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(_RECONNECT_S[min(failures, len(_RECONNECT_S) - 1)])
            failures += 1

    async def _accept(self, data: bytes) -> None:
        try:
            copy = _decode_copy.decode(data)
        except msgspec.DecodeError:
            _log.warning("ignored a malformed notice on %s", CHANNEL)
            return
        await self._cache.accept_notice(copy)

    async def _catch_up(self) -> None:
        """After a (re)connection: adopt copies that changed while this replica was away."""
        for project, state in list(self._cache.states.items()):
            if not state.known:
                continue
            copy = await self.get(project)
            if copy is not None and copy.digest != state.digest:
                await self._cache.accept_notice(copy)

    def _up(self) -> None:
        if self.up is False:
            _log.warning("redis is reachable again: sharing manifests between replicas")
        self.up = True

    def _down(self, exc: BaseException) -> None:
        if self.up is not False:  # once per outage, not per request
            _log.warning(
                "redis unreachable (%s): working from the local cache until it is back",
                type(exc).__name__,
            )
        self.up = False
