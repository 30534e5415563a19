"""The compiled route table: (project, module) → environment → a ready-to-serve Route.

The table is immutable; the builder makes a new one and swaps it in with one assignment, so a
request sees either the old table or the new one, never half of each. A request holds the module
instance it started with until it ends; an instance replaced in a newer table is closed once the
last request using it has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fd2.module import Handler, Module
from fd2.serving.errors import Fd2Error

if TYPE_CHECKING:
    from fd2.control.tasks import Supervisor
    from fd2.pipeline.route_steps import RouteSteps

_log = logging.getLogger("fd2.routes")


class LoadedModule:
    """A set-up module instance and the count of requests currently using it."""

    __slots__ = ("_close_task", "closed", "in_flight", "instance", "label", "retired", "tasks")

    def __init__(self, instance: Module, label: str, tasks: Supervisor | None = None) -> None:
        self.instance = instance
        self.label = label
        self.tasks = tasks
        """The instance's background tasks (`ModuleContext.tasks`), stopped before it closes."""
        self.in_flight = 0
        self.retired = False
        self.closed = False
        self._close_task: asyncio.Task[None] | None = None

    def acquire(self) -> None:
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        if self.retired and self.in_flight == 0:
            self._schedule_close()

    def retire(self) -> None:
        """Called when a newer table no longer uses this instance."""
        self.retired = True
        if self.in_flight == 0:
            self._schedule_close()

    def _schedule_close(self) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        try:
            if self.tasks is not None:
                await self.tasks.aclose()
            await self.instance.close()
        except Exception as exc:  # a module's close must not disturb the gateway
            _log.warning("closing %s failed: %s", self.label, type(exc).__name__)
        else:
            _log.debug("closed %s", self.label)
        finally:
            self.closed = True

    async def wait_closed(self) -> None:
        if self._close_task is not None:
            await self._close_task


class Route:
    """Everything the hot path needs for one (project, module, environment)."""

    __slots__ = ("environment", "handlers", "loaded", "module", "project", "steps", "unavailable")

    def __init__(
        self,
        *,
        project: str,
        module: str,
        environment: str,
        loaded: LoadedModule | None,
        handlers: Mapping[str, Mapping[str, Handler]],
        unavailable: Fd2Error | None = None,
        steps: RouteSteps | None = None,
    ) -> None:
        self.steps = steps
        """The route's compiled steps: its auth policy and limits, for the operator views (the
        handlers already include them); None when the gateway was built without auth."""
        self.project = project
        self.module = module
        self.environment = environment
        self.loaded = loaded
        self.handlers = handlers
        """By path, then method: the module's handlers behind the route's steps (composed once,
        when the route was compiled; the module's own handlers when it has no steps)."""
        self.unavailable = unavailable


class RouteGroup:
    """The routes of one (project, module), by canonical environment name."""

    __slots__ = ("by_environment", "default_environment", "environment_list", "origin")

    def __init__(
        self,
        *,
        by_environment: Mapping[str, Route],
        default_environment: str | None,
        origin: str,
    ) -> None:
        self.by_environment = by_environment
        self.default_environment = default_environment
        self.origin = origin
        self.environment_list = ", ".join(sorted(by_environment))


class RouteTable:
    """An immutable snapshot: groups by (project, module), and the projects it knows."""

    __slots__ = ("groups", "projects", "version")

    def __init__(
        self,
        groups: Mapping[tuple[str, str], RouteGroup],
        projects: frozenset[str],
        version: int,
    ) -> None:
        self.groups = groups
        self.projects = projects
        self.version = version

    def __len__(self) -> int:
        return sum(len(group.by_environment) for group in self.groups.values())

    def loaded_modules(self) -> list[LoadedModule]:
        return [
            route.loaded
            for group in self.groups.values()
            for route in group.by_environment.values()
            if route.loaded is not None
        ]


EMPTY_TABLE = RouteTable({}, frozenset(), 0)
