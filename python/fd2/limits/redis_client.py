"""The Redis client shared limits and Redis-stored API keys use."""

from __future__ import annotations

from typing import Any


def make_redis(redis_url: str) -> Any:
    """A Redis client for the hot path: short timeouts, no retries, a bounded blocking pool."""
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
    return redis.asyncio.Redis.from_pool(pool)
