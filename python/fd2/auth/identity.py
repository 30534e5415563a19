"""Who is calling, once authenticated: what they may use and the limits that follow them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fd2._native import GcraPlan
from fd2.control.environments import canonical_environment, is_valid_environment_name
from fd2.limits.plan import credential_specs
from fd2.limits.specs import MAX_LIMIT, LimitSpec


class Identity:
    """An authenticated caller on one route. Built at compile time for API keys."""

    __slots__ = ("credential", "endpoints", "limit_specs", "models", "planned", "restricted")

    def __init__(
        self,
        credential: str,
        *,
        models: frozenset[str] | None = None,
        endpoints: frozenset[str] | None = None,
        limit_specs: tuple[LimitSpec, ...] = (),
    ) -> None:
        self.credential = credential
        self.models = models
        self.endpoints = endpoints
        self.limit_specs = limit_specs
        self.restricted = endpoints is not None or models is not None
        """Limited to some endpoints or models: what authorising can refuse."""
        self.planned: tuple[object, GcraPlan] | None = None
        """The in-process limiter's plan of the route's buckets and these (`LimitPlan`'s)."""

    def allows_endpoint(self, path: str) -> bool:
        allowed = self.endpoints
        if allowed is None:
            return True
        short = path.removeprefix("/v1")
        return bool(
            "*" in allowed or path in allowed or short in allowed or short.lstrip("/") in allowed
        )


RATE_LIMIT_WINDOWS: Final = {
    "second": "requests_per_second",
    "minute": "requests_per_minute",
    "hour": "requests_per_hour",
}
DEFAULT_RATE_LIMIT_WINDOW: Final = "hour"
"""The JWT service's own evidence reads `rate_limit` per hour (see docs/security.md)."""


def identity_from_claims(
    claims: Mapping[str, Any],
    *,
    project: str,
    environment: str,
    require_route_claims: bool,
    rate_limit_window: str = DEFAULT_RATE_LIMIT_WINDOW,
) -> Identity | None:
    """The caller a token describes; None when its claims do not fit this route.

    `rate_limit_window`: the window of the `rate_limit` claim (`second`, `minute`, `hour`)."""
    claimed_project = claims.get("project")
    claimed_env = claims.get("environment")
    if (claimed_project is None or claimed_env is None) and require_route_claims:
        return None
    if claimed_project is not None and claimed_project != project:
        return None
    if claimed_env is not None and not (
        isinstance(claimed_env, str)
        and is_valid_environment_name(claimed_env)
        and canonical_environment(claimed_env) == environment
    ):
        return None
    models = _string_set(claims.get("models"))
    endpoints = _endpoint_set(claims.get("endpoint_permissions"))
    if isinstance(models, bool) or isinstance(endpoints, bool):
        return None
    subject = claims.get("sub")
    credential = f"jwt:{subject if isinstance(subject, str | int) else claims.get('jti', '?')}"
    specs: tuple[LimitSpec, ...] = ()
    if "rate_limit" in claims:
        rate = _positive_integer(claims["rate_limit"])
        if rate is None:
            return None  # a limit of the wrong shape grants nothing, not everything
        rate = min(rate, MAX_LIMIT)  # beyond it, no limit in practice: counted as the largest
        field = RATE_LIMIT_WINDOWS[rate_limit_window]
        specs = credential_specs(project, credential, {field: rate})
    return Identity(credential, models=models, endpoints=endpoints, limit_specs=specs)


def _positive_integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the JWT service's formula claims compute floats
    return value if isinstance(value, int) and value > 0 else None


def _string_set(value: Any) -> frozenset[str] | bool | None:
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    return False  # a claim of the wrong shape grants nothing


def _endpoint_set(value: Any) -> frozenset[str] | bool | None:
    if isinstance(value, dict):
        return frozenset(str(key) for key, allowed in value.items() if allowed is True)
    return _string_set(value)
