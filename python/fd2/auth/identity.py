"""Who is calling, once authenticated: what they may use and the limits that follow them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fd2.environments import canonical_environment, is_valid_environment_name
from fd2.limits.plan import credential_specs
from fd2.limits.specs import LimitSpec


class Identity:
    """An authenticated caller on one route. Built at compile time for API keys."""

    __slots__ = ("credential", "endpoints", "limit_specs", "models")

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

    def allows_endpoint(self, path: str) -> bool:
        allowed = self.endpoints
        if allowed is None:
            return True
        short = path.removeprefix("/v1")
        return bool(
            "*" in allowed or path in allowed or short in allowed or short.lstrip("/") in allowed
        )


def identity_from_claims(
    claims: Mapping[str, Any], *, project: str, environment: str, require_route_claims: bool
) -> Identity | None:
    """The caller a token describes; None when its claims do not fit this route."""
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
    rate = claims.get("rate_limit")
    specs: tuple[LimitSpec, ...] = ()
    if isinstance(rate, int) and not isinstance(rate, bool) and rate > 0:
        specs = credential_specs(project, credential, {"requests_per_minute": rate})
    return Identity(credential, models=models, endpoints=endpoints, limit_specs=specs)


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
