"""Coarse deadlines for the hot path: a time limit on a block of a task's work, kept to within
`SWEEP_S`, for a fraction of what `asyncio.timeout` costs.

`asyncio.timeout` costs ~5 µs per use (a Timeout object, `current_task`, a timer armed and
cancelled); a request used two or three of them for limits that are seconds to minutes long (the
body's arrival, the whole upstream exchange). Here a deadline is one dict entry that a single
task per event loop looks at ten times a second; the task stops after a few idle seconds and the
next deadline starts it again. When a deadline passes, its task is cancelled with a message of
its own, and leaving the block turns that cancellation (and only that one) into `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, Final

from fd2.loop_workers import current_task, on_loop

_monotonic = time.monotonic
SWEEP_S: Final = 0.1
"""How late a deadline may fire."""
_IDLE_SWEEPS: Final = 50


class Deadline:
    """`with Deadline(seconds):` around awaits of the current task (or of `task`, when the
    caller has it at hand); raises TimeoutError on leaving when the time ran out first. Nests
    (each block has its own)."""

    __slots__ = ("_at", "_sweeper", "_task", "expired")

    def __init__(self, seconds: float, task: asyncio.Task[Any] | None = None) -> None:
        if task is None:
            task = current_task()
        self._task = task
        self._at = _monotonic() + seconds
        loop = task.get_loop()
        sweeper = _sweepers.get(loop)
        if sweeper is None or (running := sweeper.task) is None or running.done():
            sweeper = on_loop(_sweepers, loop, _Sweeper)
        self._sweeper = sweeper
        self.expired = False

    def push_back(self, seconds: float) -> None:
        """While entered: the time runs out `seconds` from now (a stream's limit between pieces,
        moved on as each one arrives; `math.inf` holds it while the wait is someone else's).
        From callbacks too, not only the task's own code; nothing once it has expired."""
        at = self._at = _monotonic() + seconds
        waiting = self._sweeper.waiting
        if self in waiting:
            waiting[self] = at

    def __enter__(self) -> Deadline:
        self._sweeper.waiting[self] = self._at
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._sweeper.waiting.pop(self, None)
        if (
            self.expired
            and isinstance(error, asyncio.CancelledError)
            and error.args == (self,)
            and self._task.uncancel() == 0
        ):
            raise TimeoutError from None

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel(self)


class _Sweeper:
    """The deadlines of one event loop, checked by one task every `SWEEP_S`."""

    __slots__ = ("task", "waiting")

    def __init__(self) -> None:
        self.waiting: dict[Deadline, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        idle = 0
        while idle < _IDLE_SWEEPS:
            await asyncio.sleep(SWEEP_S)
            if not self.waiting:
                idle += 1
                continue
            idle = 0
            now = time.monotonic()
            for deadline in [d for d, at in self.waiting.items() if at <= now]:
                del self.waiting[deadline]
                deadline._expire()


_sweepers: dict[asyncio.AbstractEventLoop, _Sweeper] = {}
"""Each loop's sweeper; looked up in `Deadline.__init__` itself (one call fewer per deadline)."""
