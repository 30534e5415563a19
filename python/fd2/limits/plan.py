"""A route's limits, compiled once: the route's and the project's buckets, ready to check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from fd2._native import GcraPlan
from fd2.limits.gcra import Decision, LocalLimiter
from fd2.limits.specs import LimitSpec, parse_limits, specs_for
from fd2.serving.errors import ConfigError

if TYPE_CHECKING:
    from fd2.auth.identity import Identity


class Limiter(Protocol):
    async def acquire(self, specs: tuple[LimitSpec, ...], costs: list[int]) -> Decision: ...

    async def adjust(self, specs: tuple[LimitSpec, ...], deltas: list[int]) -> None: ...


class LimitPlan:
    """The static buckets of one (project, module, environment) and the limiter that holds them."""

    __slots__ = (
        "_local",
        "acquire_now",
        "limiter",
        "per_caller",
        "per_client",
        "planned",
        "static_specs",
        "static_token_specs",
    )

    def __init__(
        self,
        limiter: Limiter,
        static_specs: tuple[LimitSpec, ...],
        *,
        per_client: tuple[LimitSpec, ...] = (),
        per_caller: tuple[LimitSpec, ...] = (),
    ) -> None:
        self.limiter = limiter
        self.acquire_now: Callable[[tuple[LimitSpec, ...], list[int]], Decision] | None = (
            limiter.acquire_now if isinstance(limiter, LocalLimiter) else None
        )
        """The in-process limiter's decision without a coroutine (None: it is remote)."""
        self._local = limiter if isinstance(limiter, LocalLimiter) else None
        self.planned: GcraPlan | None = None
        if self._local is not None and static_specs:
            try:
                self.planned = self._local.plan(static_specs)
            except OverflowError:  # a route's settings error, not every request's 500
                raise ConfigError("a limit or its window is too large to count") from None
        """The static buckets planned in the in-process limiter (None: remote, or none)."""
        self.static_specs = static_specs
        self.static_token_specs = tuple(s for s in static_specs if s.kind == "tokens")
        self.per_client = per_client
        """Buckets counted per client address (an APISIX route's default limit key)."""
        self.per_caller = per_caller
        """Buckets counted per authenticated caller (APISIX's `consumer_name`)."""

    @property
    def empty(self) -> bool:
        return not (self.static_specs or self.per_client or self.per_caller)

    def planned_with(self, identity: Identity) -> GcraPlan | None:
        """The static buckets and the caller's, planned once per identity (None: remote).
        An identity belongs to one route, so to one plan: the cache is the identity's."""
        if self._local is None:
            return None
        cached = identity.planned
        if cached is not None and cached[0] is self:
            return cached[1]
        planned = self._local.plan(self.static_specs + identity.limit_specs)
        identity.planned = (self, planned)
        return planned

    def dynamic_specs(self, client: str, caller: str | None) -> tuple[LimitSpec, ...]:
        """The per-client and per-caller buckets of one request (a caller-keyed bucket falls
        back to the client's address on an open route)."""
        specs = tuple(_keyed(spec, f"client:{client}") for spec in self.per_client)
        who = f"caller:{caller}" if caller is not None else f"client:{client}"
        return specs + tuple(_keyed(spec, who) for spec in self.per_caller)


def _keyed(spec: LimitSpec, suffix: str) -> LimitSpec:
    return LimitSpec(f"{spec.key}:{suffix}", spec.kind, spec.limit, spec.interval_us)


def compile_plan(
    limiter: Limiter,
    *,
    project: str,
    module: str,
    environment: str,
    environment_limits: Any,
    module_limits: Any,
    gateway: tuple[tuple[LimitSpec, ...], tuple[LimitSpec, ...], tuple[LimitSpec, ...]] = (
        (),
        (),
        (),
    ),
) -> LimitPlan:
    """Buckets from `environments.<env>.limits` (route defaults, plus `project`) and the module's
    own `limits`, which override the environment's defaults field by field."""
    env_raw: Mapping[str, Any] = (
        environment_limits if isinstance(environment_limits, Mapping) else {}
    )
    route = parse_limits(env_raw, f"environments.{environment}.limits")
    route.update(parse_limits(module_limits, "limits"))
    shared = parse_limits(env_raw.get("project"), f"environments.{environment}.limits.project")
    specs = specs_for(f"route:{project}:{module}:{environment}", route) + specs_for(
        f"project:{project}:{environment}", shared
    )
    route_wide, per_client, per_caller = gateway
    return LimitPlan(limiter, specs + route_wide, per_client=per_client, per_caller=per_caller)


def credential_specs(
    project: str, credential: str, limits: Mapping[str, int]
) -> tuple[LimitSpec, ...]:
    return specs_for(f"credential:{project}:{credential}", limits)
