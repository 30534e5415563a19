"""The worker's limiter: shared through Redis when a URL is configured, in process otherwise."""

from __future__ import annotations

from fd2.limits.gcra import LocalLimiter
from fd2.limits.shared import SharedLimiter


def make_limiter(redis_url: str | None, on_failure: str) -> LocalLimiter | SharedLimiter:
    if not redis_url:
        return LocalLimiter()
    import redis.asyncio  # imported only where Redis is configured
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # A blocking pool: a burst beyond the pool waits its turn for a connection (bounded by
    # `timeout`) instead of failing over to the per-process limits.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=64,
        timeout=1.0,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=30,
        # No retries with back-off inside a request: the limiter's own breaker decides what a
        # failure means (fail open or closed) at once.
        retry=Retry(NoBackoff(), 0),
    )
    return SharedLimiter(redis.asyncio.Redis.from_pool(pool), on_failure=on_failure)
