"""Compiled prompts of the Redis store, cached per worker, dropped on change notices.

One `SharedPrompts` per Redis client (one per worker) serves every module of the worker. It
listens on `fd2:prompt-changes` in a task of its own, started by the first lookup: a notice
drops the prompt it names, so a change made at any replica is served everywhere within a round
trip. While the subscription is down (Redis away, reconnecting) cached entries are trusted for
`_UNSUBSCRIBED_TTL_S` only, and everything is dropped when it comes back (changes may have been
missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import TYPE_CHECKING, Final

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from fd2.prompts.record import CompiledPrompt
from fd2.prompts.store import CHANNEL, PromptStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

_log = logging.getLogger("fd2.prompts")
_UNSUBSCRIBED_TTL_S: Final = 1.0
_RECONNECT_S: Final = (0.2, 0.5, 1.0, 2.0, 5.0)
_MAX_ENTRIES: Final = 4096


class SharedPrompts:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.store = PromptStore(redis)
        self._cache: dict[tuple[str, str], tuple[float, CompiledPrompt | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False

    async def get(self, project: str, prompt_id: str) -> CompiledPrompt | None:
        self._listen()
        key = (project, prompt_id)
        entry = self._cache.get(key)
        now = time.monotonic()
        if entry is not None and (self.subscribed or entry[0] > now):
            return entry[1]
        prompt = await self.store.load(project, prompt_id)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = (now + _UNSUBSCRIBED_TTL_S, prompt)
        return prompt

    def drop(self, project: str, prompt_id: str) -> None:
        self._cache.pop((project, prompt_id), None)

    def _listen(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="prompt notices")

    async def _run(self) -> None:
        failures = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                await self._redis.ping()
                self._cache.clear()  # whatever changed while away
                self.subscribed = True
                failures = 0
                while True:
                    if not pubsub.subscribed:
                        raise RedisConnectionError("the subscription was lost")
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        self._accept(message["data"])
            except (RedisError, OSError) as exc:
                if self.subscribed:
                    _log.warning(
                        "prompt notices: redis unreachable (%s); reconnecting", type(exc).__name__
                    )
                self.subscribed = False
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(_RECONNECT_S[min(failures, len(_RECONNECT_S) - 1)])
            failures += 1

    def _accept(self, data: bytes) -> None:
        try:
            notice = orjson.loads(data)
            self.drop(str(notice["project"]), str(notice["id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            _log.warning("ignored a malformed notice on %s", CHANNEL)


_shared: weakref.WeakKeyDictionary[Redis, SharedPrompts] = weakref.WeakKeyDictionary()


def shared_prompts(redis: Redis) -> SharedPrompts:
    """The worker's SharedPrompts for its Redis client."""
    found = _shared.get(redis)
    if found is None:
        found = _shared[redis] = SharedPrompts(redis)
    return found
