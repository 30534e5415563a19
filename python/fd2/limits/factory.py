"""The worker's limiter: shared through Redis when a URL is configured, in process otherwise."""

from __future__ import annotations

from fd2.limits.gcra import LocalLimiter
from fd2.limits.shared import SharedLimiter


def make_limiter(redis_url: str | None, on_failure: str) -> LocalLimiter | SharedLimiter:
    if not redis_url:
        return LocalLimiter()
    import redis.asyncio  # imported only where Redis is configured

    client = redis.asyncio.Redis.from_url(
        redis_url,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=30,
    )
    return SharedLimiter(client, on_failure=on_failure)
