"""`Module.health()`, asked in the background; reported by `/readyz`, `/admin/routes`, `/metrics`.

Every serving instance is asked every `interval_s` seconds, all at once, each answer bounded by
`timeout_s` (a check that hangs counts as unhealthy, and never holds anything up). Requests and
probes only read the last answers: a health check never runs per request.

An unhealthy module is reported, not acted on: `/readyz` lists it but stays 200 while a manifest
source is usable. What makes a module unhealthy (its upstream down, a quota spent) is shared by
every replica, so taking this one out of the load balancer would move no traffic anywhere
better; with every replica out, it would turn one module's outage into the whole gateway's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from prometheus_client.core import GaugeMetricFamily, Metric

from fd2.control.slices import Slices
from fd2.module import Health, Module

if TYPE_CHECKING:
    from fd2.control.route_builder import RouteBuilder
    from fd2.control.tasks import Supervisor

_log = logging.getLogger("fd2.health")
DEFAULT_INTERVAL_S: Final = 10.0
DEFAULT_TIMEOUT_S: Final = 2.0

_HEALTHY: Final = Health(ok=True)
RouteKey = tuple[str, str, str]
"""(project, module, environment)"""


class ModuleHealth:
    def __init__(
        self,
        builder: RouteBuilder,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._builder = builder
        self._interval = interval_s
        self._timeout = timeout_s
        self._answers: dict[RouteKey, Health] = {}

    def start(self, tasks: Supervisor) -> None:
        tasks.every("module health", self._interval, self.check, first_delay_s=0.0)

    async def check(self) -> None:
        """Ask every serving instance of the current table once (concurrently). The pass over
        the table yields the loop every ~0.25 ms (a table is never changed, only replaced)."""
        slices = Slices()
        routes: list[tuple[RouteKey, Module]] = []
        # Only instances with a check of their own are asked (a task each); the others give the
        # default answer in place: at 10k routes a task per instance held the loop ~0.2 s.
        asked: list[tuple[int, Module]] = []
        for project, modules in self._builder.table.by_project.items():
            for module, group in modules.items():
                for environment, route in group.by_environment.items():
                    loaded = route.loaded
                    if loaded is not None and not loaded.retired:
                        instance = loaded.instance
                        if type(instance).health is not Module.health:
                            asked.append((len(routes), instance))
                        routes.append(((project, module, environment), instance))
            await slices.pause()
        answers = [_HEALTHY] * len(routes)
        if asked:
            found = await asyncio.gather(*(self._ask(instance) for _, instance in asked))
            for (index, _), health in zip(asked, found, strict=True):
                answers[index] = health
        previous, current = self._answers, {}
        for (key, _), health in zip(routes, answers, strict=True):
            current[key] = health
            await slices.pause()
            was = previous.get(key)
            if not health.ok and (was is None or was.ok):
                _log.warning("module %s/%s [%s] is unhealthy: %s", *key, health.detail)
            elif health.ok and was is not None and not was.ok:
                _log.info("module %s/%s [%s] is healthy again", *key)
        self._answers = current  # whole: readers never see half of a check

    async def _ask(self, instance: Module) -> Health:
        if type(instance).health is Module.health:
            return _HEALTHY  # the default answer: no coroutine, no timer
        try:
            async with asyncio.timeout(self._timeout):
                health = await instance.health()
        except TimeoutError:
            return Health(ok=False, detail=f"no health answer within {self._timeout:g} s")
        except Exception as exc:  # a failing check is an unhealthy module, not a failing gateway
            return Health(ok=False, detail=f"the health check failed ({type(exc).__name__})")
        if not isinstance(health, Health):
            return Health(ok=False, detail="the health check did not return a Health")
        return health

    def of(self, project: str, module: str, environment: str) -> Health | None:
        """The last answer for a route (None before its first check)."""
        return self._answers.get((project, module, environment))

    def unhealthy(self) -> list[dict[str, str]]:
        return [
            {"project": p, "module": m, "environment": e, "detail": health.detail}
            for (p, m, e), health in sorted(self._answers.items())
            if not health.ok
        ]

    def metric_families(self) -> Iterator[Metric]:
        healthy = GaugeMetricFamily(
            "fd2_module_healthy",
            "1 when the module instance's last health check passed, else 0",
            labels=["project", "module", "environment"],
        )
        for key, health in sorted(self._answers.items()):
            healthy.add_metric(list(key), 1.0 if health.ok else 0.0)
        yield healthy
