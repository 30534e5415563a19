"""Limit specifications: what a manifest says, compiled into GCRA parameters once per route.

A limit of N per window W is a GCRA bucket with capacity N that refills one unit every W/N: a
client may spend N at once, then N per W. Every quantity is in integer microseconds so the Redis
script and the in-process limiter compute exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from fd2.serving.errors import ConfigError

_WINDOWS_US: Final = {
    "requests_per_second": ("requests", 1_000_000),
    "requests_per_minute": ("requests", 60_000_000),
    "requests_per_hour": ("requests", 3_600_000_000),
    "tokens_per_minute": ("tokens", 60_000_000),
}
LIMIT_FIELDS: Final = frozenset(_WINDOWS_US)
MAX_LIMIT: Final = 10**12
"""The largest limit a manifest may set: far above any real one, and small enough that every
bucket's arithmetic fits the native limiter's 64-bit state."""


class LimitSpec(msgspec.Struct, frozen=True):
    """One bucket: its storage key, what it counts, its size and its refill interval."""

    key: str
    kind: str
    """`requests` or `tokens`."""
    limit: int
    interval_us: int
    """Time to refill one unit (window / limit)."""

    @property
    def capacity_us(self) -> int:
        """The bucket's size in µs (the window). The limiters compute it inline: no call per
        bucket on the request path."""
        return self.limit * self.interval_us


def parse_limits(raw: Any, where: str) -> dict[str, int]:
    """The known limit fields of a manifest `limits` object (positive integers), checked."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be an object")
    limits: dict[str, int] = {}
    for name in LIMIT_FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}.{name} must be a positive integer") from None
        if number < 1 or isinstance(value, bool):
            raise ConfigError(f"{where}.{name} must be a positive integer")
        if number > MAX_LIMIT:
            raise ConfigError(f"{where}.{name} must be at most {MAX_LIMIT}")
        limits[name] = number
    return limits


def specs_for(prefix: str, limits: Mapping[str, int]) -> tuple[LimitSpec, ...]:
    """Buckets for one scope (`prefix` names it: route, project or credential)."""
    specs = []
    for name, value in sorted(limits.items()):
        kind, window_us = _WINDOWS_US[name]
        specs.append(LimitSpec(f"{prefix}:{name}", kind, value, max(1, window_us // value)))
    return tuple(specs)
