"""Supervised background tasks: the worker's control-plane loops and those modules start.

A task that raises is logged and started again after a back-off (doubling from `backoff_s[0]` up
to `backoff_s[1]`, back to the start once a run lasted `healthy_after_s`), so one unexpected
exception never silently ends a loop the gateway depends on (a manifest refresher, a Redis
listener). A task that returns has finished. `aclose()` cancels every task and waits for them.

A module gets a child supervisor of its own (`ModuleContext.tasks`): its tasks stop when the
module instance is closed, and at the latest when the worker shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Final

from fd2.telemetry.log_throttle import ThrottledLog

_log = logging.getLogger("fd2.tasks")
DEFAULT_BACKOFF_S: Final = (0.1, 30.0)
DEFAULT_HEALTHY_AFTER_S: Final = 60.0

Run = Callable[[], Awaitable[object]]


class SupervisedTask:
    """One supervised task: what it is called, and how it has fared (read by /admin/routes)."""

    __slots__ = ("last_error", "name", "restarts", "run", "task")

    def __init__(self, name: str, run: Run) -> None:
        self.name = name
        self.run = run
        self.restarts = 0
        self.last_error: str | None = None
        """The type of the last exception that ended a run (never its message: it may quote
        secrets or upstream answers)."""
        self.task: asyncio.Task[None] | None = None


class Supervisor:
    """Starts, restarts and stops background tasks; `child(name)` makes a scope inside it."""

    # Slots: every route of a table has a scope of its own (10k at 10k routes).
    __slots__ = (
        "__weakref__",
        "_backoff",
        "_children",
        "_closed",
        "_crash_log",
        "_healthy_after",
        "_jobs",
        "_parent",
        "name",
    )

    def __init__(
        self,
        name: str = "",
        *,
        backoff_s: tuple[float, float] = DEFAULT_BACKOFF_S,
        healthy_after_s: float = DEFAULT_HEALTHY_AFTER_S,
        parent: Supervisor | None = None,
    ) -> None:
        self.name = name
        self._backoff = backoff_s
        self._healthy_after = healthy_after_s
        self._parent = parent
        self._jobs: list[SupervisedTask] = []
        # A dict as an ordered set: scopes come and go with module instances, thousands of them.
        self._children: dict[Supervisor, None] = {}
        self._closed = False
        self._crash_log: ThrottledLog = (
            parent._crash_log if parent is not None else ThrottledLog(_log)
        )

    def spawn(self, name: str, run: Run) -> SupervisedTask:
        """Run `run()` in the background, again after a back-off whenever it raises."""
        if self._closed:
            raise RuntimeError(f"tasks of {self.name or 'the worker'} are stopped")
        job = SupervisedTask(f"{self.name}: {name}" if self.name else name, run)
        job.task = asyncio.get_running_loop().create_task(self._supervise(job), name=job.name)
        self._jobs.append(job)
        job.task.add_done_callback(lambda _: self._forget(job))
        return job

    def _forget(self, job: SupervisedTask) -> None:
        if job in self._jobs:  # a finished one-off task is not kept for ever
            self._jobs.remove(job)

    def every(
        self,
        name: str,
        interval_s: float | Callable[[], float],
        tick: Run,
        *,
        first_delay_s: float | None = None,
    ) -> SupervisedTask:
        """Call `tick()` every `interval_s` seconds (a callable is asked before each wait).

        A tick that raises is logged and the loop goes on after the back-off."""

        def interval() -> float:
            return interval_s() if callable(interval_s) else interval_s

        async def repeat() -> None:
            delay = interval() if first_delay_s is None else first_delay_s
            while True:
                await asyncio.sleep(delay)
                await tick()
                delay = interval()

        return self.spawn(name, repeat)

    def child(self, name: str) -> Supervisor:
        """A scope whose tasks stop with `aclose()` on it, or with this supervisor's."""
        if self._closed:
            raise RuntimeError(f"tasks of {self.name or 'the worker'} are stopped")
        # Filled in directly, as `__init__` would with this one's settings: a full build makes
        # a scope per route, and the keyword call cost as much as the rest.
        scope = Supervisor.__new__(Supervisor)
        scope.name = f"{self.name}: {name}" if self.name else name
        scope._backoff = self._backoff
        scope._healthy_after = self._healthy_after
        scope._parent = self
        scope._jobs = []
        scope._children = {}
        scope._closed = False
        scope._crash_log = self._crash_log
        self._children[scope] = None
        return scope

    @property
    def tasks(self) -> list[SupervisedTask]:
        """Every task started here or in a child scope that is still open."""
        return [*self._jobs, *(job for child in self._children for job in child.tasks)]

    async def aclose(self) -> None:
        """Cancel every task (children's too) and wait until they have all ended."""
        self._closed = True
        if self._parent is not None:
            self._parent._children.pop(self, None)
        children, self._children = self._children, {}
        jobs, self._jobs = self._jobs, []
        if not children and not jobs:
            return  # most module instances start no task: closing them costs nothing
        await asyncio.gather(*(child.aclose() for child in children))
        pending = [job.task for job in jobs if job.task is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _supervise(self, job: SupervisedTask) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            began = loop.time()
            try:
                await job.run()
            except Exception as exc:
                if loop.time() - began >= self._healthy_after:
                    failures = 0
                first, cap = self._backoff
                delay = min(cap, first * 2**failures) * random.uniform(0.8, 1.0)  # noqa: S311
                failures += 1
                job.restarts += 1
                job.last_error = type(exc).__name__
                self._crash_log.error(
                    f"{job.name}:{job.last_error}",
                    "background task %r failed (%s); restarting in %.1f s",
                    job.name,
                    job.last_error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            _log.debug("background task %r finished", job.name)
            return
