"""Stored responses, for `previous_response_id` and `GET /v1/responses/{id}`.

With Redis (`--redis-url`) a response is one JSON value under
`fd2:response:<project>:<module>:<id>` with a TTL, so every replica can continue a conversation
another one started. Without Redis they are kept in this worker's memory (bounded, same TTL):
enough for one process, said in the docs. Ids are 128 random bits; the key also names the
project and module, so one project never reads another's responses.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson
from redis.exceptions import RedisError

from fd2.serving.errors import ServiceUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

PREFIX: Final = "fd2:response:"
DEFAULT_TTL_S: Final = 7 * 24 * 3600
_MEMORY_ENTRIES: Final = 2000
_log = logging.getLogger("fd2.responses")


class ResponseStore:
    def __init__(self, redis: Redis | None, project: str, module: str, ttl_s: int) -> None:
        self._redis = redis
        self._scope = f"{PREFIX}{project}:{module}:"
        self._ttl_s = ttl_s
        self._memory: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    @property
    def shared(self) -> bool:
        return self._redis is not None

    async def put(self, response_id: str, record: Mapping[str, Any]) -> None:
        data = orjson.dumps(record)
        if self._redis is None:
            self._memory[response_id] = (time.monotonic() + self._ttl_s, data)
            self._memory.move_to_end(response_id)
            while len(self._memory) > _MEMORY_ENTRIES:
                self._memory.popitem(last=False)
            return
        try:
            await self._redis.set(self._scope + response_id, data, ex=self._ttl_s)
        except (RedisError, OSError) as exc:
            # The answer is already the client's: a response that cannot be kept is logged.
            _log.warning(
                "response %s not stored: redis unreachable (%s)", response_id, type(exc).__name__
            )

    async def get(self, response_id: str) -> dict[str, Any] | None:
        if self._redis is None:
            entry = self._memory.get(response_id)
            if entry is None or entry[0] < time.monotonic():
                return None
            data: bytes | str | None = entry[1]
        else:
            try:
                data = await self._redis.get(self._scope + response_id)
            except (RedisError, OSError):
                raise ServiceUnavailable(
                    "Stored responses cannot be read now (Redis is unreachable).",
                    code="response_store_unavailable",
                ) from None
        if data is None:
            return None
        value = orjson.loads(data)
        return value if isinstance(value, dict) else None

    async def delete(self, response_id: str) -> bool:
        if self._redis is None:
            return self._memory.pop(response_id, None) is not None
        try:
            return bool(await self._redis.delete(self._scope + response_id))
        except (RedisError, OSError):
            raise ServiceUnavailable(
                "Stored responses cannot be changed now (Redis is unreachable).",
                code="response_store_unavailable",
            ) from None
