"""The steps of one route (project, module, environment), put in front of each of its endpoints.

Built by the route's compiler (`fd2.pipeline.compiler`) before the module is set up, then applied to
the handlers and meters the module gives. Which steps an endpoint gets is decided here, once:
authenticate and authorise unless the route is open; limits when the route has any, or when it
authenticates (a caller's key or token may carry limits of its own).
"""

from __future__ import annotations

from collections.abc import Mapping

from fd2.auth.policy import AuthPolicy
from fd2.limits.plan import LimitPlan
from fd2.metering import Meter
from fd2.module import Handler
from fd2.pipeline.auth import Authenticate, Authorise
from fd2.pipeline.limits import Limits
from fd2.pipeline.step import Step, compose
from fd2.telemetry.tracing import current as current_tracing

Handlers = Mapping[str, Mapping[str, Handler]]


class RouteSteps:
    """A route's auth policy and limits, compiled; `apply` composes them with the handlers."""

    __slots__ = ("_authenticate", "limits", "policy")

    def __init__(self, policy: AuthPolicy, limits: LimitPlan) -> None:
        self.policy = policy
        self.limits = limits
        self._authenticate = Authenticate(policy) if policy.mode != "none" else None

    @property
    def empty(self) -> bool:
        """An open route without limits: its handlers run as the module gave them."""
        return self._authenticate is None and self.limits.empty

    def steps(self, meter: Meter | None) -> list[Step]:
        """The steps of one endpoint, in order, given its meter (None: the module has none);
        each in a span of its own when tracing is on (decided here, once)."""
        steps: list[Step] = []
        if self._authenticate is not None:
            steps += (self._authenticate, Authorise(meter))
        if self._authenticate is not None or not self.limits.empty:
            steps.append(Limits(self.limits, meter))
        tracing = current_tracing()
        if tracing is not None:
            steps = [tracing.step(step) for step in steps]
        return steps

    def apply(self, handlers: Handlers, meters: Mapping[str, Meter]) -> Handlers:
        """Each endpoint's handler behind its steps; `handlers` itself when there are none."""
        if self.empty:
            return handlers
        composed: dict[str, dict[str, Handler]] = {}
        for path, methods in handlers.items():
            steps = self.steps(meters.get(path))
            composed[path] = {
                method: compose(steps, handler) for method, handler in methods.items()
            }
        return composed
