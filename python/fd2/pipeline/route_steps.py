"""The steps of one route (project, module, environment), put in front of each of its endpoints.

Built by the route's compiler (`fd2.pipeline.compiler`) before the module is set up, then applied to
the handlers and meters the module gives. Which steps an endpoint gets is decided here, once:
audit first (it records what every later step decides); authenticate and authorise unless the
route is open; limits when the route has any, or when it authenticates (a caller's key or token
may carry limits of its own); then the response cache, then PII redaction, next to the handler.
The cache sits outside redaction, so what Redis stores has been redacted already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fd2.auth.policy import AuthPolicy
from fd2.limits.plan import LimitPlan
from fd2.metering import Meter
from fd2.module import Handler, Module
from fd2.pipeline.auth import Authenticate, Authorise
from fd2.pipeline.limits import Limits
from fd2.pipeline.step import Step, compose
from fd2.telemetry.tracing import current as current_tracing

Handlers = Mapping[str, Mapping[str, Handler]]
StepFactory = Callable[[Meter | None, type[Module] | None], Step]
"""Builds a step for one endpoint from its meter and the module's class (its declarations)."""


class RouteSteps:
    """A route's auth policy and limits, compiled; `apply` composes them with the handlers."""

    __slots__ = ("_authenticates", "audit", "cache", "limits", "policy", "redaction")

    def __init__(
        self,
        policy: AuthPolicy,
        limits: LimitPlan,
        *,
        cache: StepFactory | None = None,
        redaction: StepFactory | None = None,
        audit: StepFactory | None = None,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self.cache = cache
        self.redaction = redaction
        self.audit = audit
        self._authenticates = policy.mode != "none"

    @property
    def empty(self) -> bool:
        """An open route without limits: its handlers run as the module gave them."""
        return (
            not self._authenticates
            and self.limits.empty
            and self.cache is None
            and self.redaction is None
            and self.audit is None
        )

    def steps(self, meter: Meter | None, module: type[Module] | None = None) -> list[Step]:
        """The steps of one endpoint, in order, given its meter (None: the module has none);
        each in a span of its own when tracing is on (decided here, once)."""
        tracing = current_tracing()
        steps: list[Step] = []
        if self.audit is not None:
            steps.append(self.audit(meter, module))
        if self._authenticates and tracing is not None:
            steps += (Authenticate(self.policy), Authorise(meter))  # a span each
        elif self._authenticates:
            # Authorising runs inside authenticating, only for a caller it can refuse.
            steps.append(Authenticate(self.policy, Authorise(meter)))
        if self._authenticates or not self.limits.empty:
            steps.append(Limits(self.limits, meter))
        if self.cache is not None:
            steps.append(self.cache(meter, module))
        if self.redaction is not None:
            steps.append(self.redaction(meter, module))
        if tracing is not None:
            steps = [tracing.step(step) for step in steps]
        return steps

    def apply(
        self, handlers: Handlers, meters: Mapping[str, Meter], module: Module | None = None
    ) -> Handlers:
        """Each endpoint's handler behind its steps; `handlers` itself when there are none."""
        if self.empty:
            return handlers
        kind = type(module) if module is not None else None
        composed: dict[str, dict[str, Handler]] = {}
        for path, methods in handlers.items():
            steps = self.steps(meters.get(path), kind)
            composed[path] = {
                method: compose(steps, handler) for method, handler in methods.items()
            }
        return composed
