"""An APISIX route's `limit-count` / `limit-req` plugins as fd2 buckets: per client address
(APISIX's default key), per caller (`consumer_name`), or for the whole route."""

from __future__ import annotations

from typing import Final

from fd2.control.gateway.route import LimitRule
from fd2.limits.specs import LimitSpec

_PER_CLIENT: Final = frozenset({"remote_addr", "http_x_real_ip", "http_x_forwarded_for"})
_PER_CALLER: Final = frozenset({"consumer_name", "credential"})


class RouteLimits:
    """A route's APISIX limits as fd2 buckets, by what they are counted per."""

    __slots__ = ("per_caller", "per_client", "route_wide")

    def __init__(self, prefix: str, rules: tuple[LimitRule, ...]) -> None:
        route_wide: list[LimitSpec] = []
        per_client: list[LimitSpec] = []
        per_caller: list[LimitSpec] = []
        for index, rule in enumerate(rules):
            window_us = max(1, round(rule.window_s * 1_000_000))
            spec = LimitSpec(
                f"{prefix}:apisix:{index}:{rule.plugin}",
                rule.kind,
                rule.limit,
                max(1, window_us // rule.limit),
            )
            if rule.key in _PER_CLIENT:
                per_client.append(spec)
            elif rule.key in _PER_CALLER:
                per_caller.append(spec)
            else:
                route_wide.append(spec)
        self.route_wide = tuple(route_wide)
        self.per_client = tuple(per_client)
        """Completed with the client's address per request."""
        self.per_caller = tuple(per_caller)
        """Completed with the caller's credential per request."""
