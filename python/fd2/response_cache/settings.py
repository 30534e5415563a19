"""A module's `cache` block and a request's cache directives.

The block lives in the module's manifest entry or in `metadata.fd2.modules.<name>.cache`:

    "cache": {"ttl_s": 300, "max_ttl_s": 86400, "max_entry_bytes": 1048576, "lock_s": 10}

A request may shorten or lengthen the TTL with `x-fd2-cache-ttl: <seconds>` (capped by
`max_ttl_s`; 0 stores nothing), and say `Cache-Control: no-cache` (do not read, store the new
answer) or `no-store` (neither). `cache_ttl` is not an OpenAI body field, so a header carries it.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from fd2.serving.errors import BadRequest, ConfigError

TTL_HEADER: Final = b"x-fd2-cache-ttl"


class CacheSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    ttl_s: float = 300.0
    """How long an answer is served from the cache."""
    max_ttl_s: float = 86400.0
    """The most a request's `x-fd2-cache-ttl` may ask for."""
    max_entry_bytes: int = 1 << 20
    """Answers larger than this (streams: all their chunks together) are not stored."""
    scope: Literal["route", "caller"] = "route"
    """`route`: every caller of the route shares the entries (an answer depends only on the
    request it answers); `caller`: each API key or JWT subject has its own."""
    lock_s: float = 10.0
    """How long identical misses on other workers and replicas wait for the first one's answer
    before calling upstream themselves (also the lifetime of the Redis lock)."""

    def __post_init__(self) -> None:
        if self.ttl_s <= 0 or self.max_ttl_s <= 0:
            raise ValueError("cache.ttl_s and cache.max_ttl_s must be positive")
        if self.max_entry_bytes <= 0 or self.lock_s < 0:
            raise ValueError("cache.max_entry_bytes must be positive, cache.lock_s not negative")


def cache_settings(raw: Any) -> CacheSettings | None:
    """The block decoded (None: no block, or `enabled: false`); ConfigError names what is
    wrong, which makes the route unavailable rather than silently uncached."""
    if raw is None:
        return None
    try:
        settings = msgspec.convert(raw, CacheSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"cache: {exc}") from None
    return settings if settings.enabled else None


class Directive(msgspec.Struct, frozen=True, gc=False):
    read: bool
    """Whether a stored answer may be served."""
    ttl_s: float
    """How long the new answer is stored (0: not stored)."""


def directive(headers: list[tuple[bytes, bytes]], settings: CacheSettings) -> Directive:
    """What the request's headers ask of the cache."""
    read = True
    ttl = settings.ttl_s
    for name, value in headers:
        if name == b"cache-control":
            tokens = {token.strip().split(b"=", 1)[0].lower() for token in value.split(b",")}
            if b"no-store" in tokens:
                return Directive(read=False, ttl_s=0.0)
            if b"no-cache" in tokens:
                read = False
        elif name == TTL_HEADER:
            try:
                asked = float(value)
            except ValueError:
                raise BadRequest(
                    "x-fd2-cache-ttl must be a number of seconds.", param="x-fd2-cache-ttl"
                ) from None
            if not asked >= 0:  # also refuses NaN
                raise BadRequest("x-fd2-cache-ttl must not be negative.", param="x-fd2-cache-ttl")
            ttl = min(asked, settings.max_ttl_s)
    return Directive(read=read, ttl_s=ttl)
