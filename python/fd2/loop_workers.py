"""The running task without a system call, and one background task per event
loop for a piece of hot-path bookkeeping (deadline sweeps, disconnect watches): made on first
use, started again when it stopped after idling."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from threading import get_ident
from typing import Protocol, TypeVar

_running: dict[int, asyncio.AbstractEventLoop] = {}
"""The loop last seen running in each thread."""
os.register_at_fork(after_in_child=_running.clear)


# Private, and stable from Python 3.7 to 3.13: asyncio.current_task is a lookup in it.
_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[object]] = asyncio.tasks._current_tasks  # type: ignore[attr-defined]
"""asyncio's own map of each loop's running task (what `asyncio.current_task` reads)."""


def current_task() -> asyncio.Task[object]:
    """`asyncio.current_task()`, minus its `getpid` system call. The caller must be running in
    a task: the hot path's awaits always are.

    Python 3.11 calls `getpid()` on every `get_running_loop` (and so every `current_task`) to
    notice a fork; at six per request that was ~1.5 µs of system calls. A loop that is running
    runs in one thread, so the loop this thread last saw running is still its loop while it
    runs; a fork forgets them all (`_running`), as a fork may leave a loop marked running."""
    thread = get_ident()
    loop = _running.get(thread)
    if loop is None or not loop.is_running():
        loop = _running[thread] = asyncio.get_running_loop()
    task = _tasks.get(loop)
    assert task is not None, "called outside a task"
    return task


class LoopWorker(Protocol):
    task: asyncio.Task[None] | None

    async def run(self) -> None: ...


Worker = TypeVar("Worker", bound=LoopWorker)


def on_loop(
    registry: dict[asyncio.AbstractEventLoop, Worker],
    loop: asyncio.AbstractEventLoop,
    make: Callable[[], Worker],
) -> Worker:
    """`loop`'s worker from `registry` (made by `make` the first time), its task running."""
    worker = registry.get(loop)
    if worker is None:
        worker = registry[loop] = make()
    if worker.task is None or worker.task.done():
        worker.task = loop.create_task(worker.run())
    return worker
