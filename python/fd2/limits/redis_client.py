"""The Redis client shared limits and Redis-stored API keys use."""

from __future__ import annotations

from typing import Any

DEFAULT_TIMEOUT_S = 0.05
"""Redis answers a rate-limit script in well under a millisecond; a server that takes 50 ms is
hung or lost, and the limiter's failure policy is better than waiting on it (`--redis-timeout`)."""


_CONNECT_FLOOR_S = 0.5


def make_redis(redis_url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """A Redis client for the hot path: short timeouts, no retries, a bounded blocking pool.

    `timeout` bounds every command: with a hung server (stopped, not refusing) a request waits
    at most this long, once, before the limiter's back-off takes over. Connecting may take up to
    half a second (a loaded machine's first connection must not fail over to local limits)."""
    import redis.asyncio  # imported only where Redis is configured
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # A blocking pool: a burst beyond the pool waits its turn for a connection (at most a
    # second) instead of failing over to the per-process limits.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=64,
        timeout=1.0,
        # Connecting happens once per pooled connection; a hung server still accepts TCP (the
        # kernel answers), so the command timeout below is what bounds a request against it.
        socket_connect_timeout=max(timeout, _CONNECT_FLOOR_S),
        socket_timeout=timeout,
        health_check_interval=30,
        # No retries with back-off inside a request: the limiter's own breaker decides what a
        # failure means (fail open or closed) at once.
        retry=Retry(NoBackoff(), 0),
    )
    return redis.asyncio.Redis.from_pool(pool)
