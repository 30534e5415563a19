"""The router's figures: Prometheus series in the module's registry (`GET /metrics`) and the
totals `describe()` shows in /admin/routes."""

from __future__ import annotations

from typing import Any, Final

from fd2.telemetry.module_metrics import ModuleMetrics
from fd2_inference.deployments.breaker import CLOSED, HALF_OPEN, OPEN
from fd2_inference.deployments.target import Target

_STATE: Final = {CLOSED: 0.0, HALF_OPEN: 1.0, OPEN: 2.0}


class RouterMetrics:
    def __init__(self, metrics: ModuleMetrics) -> None:
        self._attempts = metrics.counter(
            "deployment_attempts",
            "Upstream attempts by deployment target and outcome (ok or the failure's cause).",
            labels=("alias", "target", "outcome"),
        )
        self._fallbacks = metrics.counter(
            "deployment_fallbacks",
            "Requests that moved from one alias to another.",
            labels=("alias", "to"),
        )
        self._hedges = metrics.counter(
            "deployment_hedges", "Hedged attempts started.", labels=("alias",)
        )
        self._hedge_wins = metrics.counter(
            "deployment_hedge_wins", "Requests a hedged attempt answered first.", labels=("alias",)
        )
        self._breaker = metrics.gauge(
            "deployment_breaker_state",
            "Circuit breaker per target: 0 closed, 1 half open, 2 open.",
            labels=("alias", "target"),
        )
        self._in_flight = metrics.gauge(
            "deployment_in_flight", "Attempts in flight per target.", labels=("alias", "target")
        )
        self.counts = {"attempts": 0, "failures": 0, "fallbacks": 0, "hedges": 0, "hedge_wins": 0}
        # Label children looked up once per target (and outcome): `labels()` is a lock and a
        # tuple per call, per attempt otherwise.
        self._children: dict[tuple[int, str], Any] = {}

    def _child(self, target: Target, kind: str) -> Any:
        key = (id(target), kind)
        child = self._children.get(key)
        if child is None:
            labels = {"alias": target.alias, "target": target.label}
            if kind == "breaker":
                child = self._breaker.labels(**labels)
            elif kind == "in_flight":
                child = self._in_flight.labels(**labels)
            else:
                child = self._attempts.labels(**labels, outcome=kind)
            self._children[key] = child
        return child

    def attempted(self, target: Target) -> None:
        self.counts["attempts"] += 1
        self._child(target, "in_flight").set(target.in_flight + 1)

    def finished(self, target: Target, cause: str | None) -> None:
        if cause is not None and cause != "cancelled":
            self.counts["failures"] += 1
        self._child(target, cause or "ok").inc()
        self._child(target, "breaker").set(_STATE[target.breaker.state])
        self._child(target, "in_flight").set(target.in_flight)

    def fell_back(self, alias: str, to: str) -> None:
        self.counts["fallbacks"] += 1
        self._fallbacks.labels(alias=alias, to=to).inc()

    def hedged(self, alias: str) -> None:
        self.counts["hedges"] += 1
        self._hedges.labels(alias=alias).inc()

    def hedge_won(self, alias: str) -> None:
        self.counts["hedge_wins"] += 1
        self._hedge_wins.labels(alias=alias).inc()

    def totals(self) -> dict[str, int]:
        return dict(self.counts)
