"""One background task per event loop for a piece of hot-path bookkeeping (deadline sweeps,
disconnect watches): made on first use, started again when it stopped after idling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, TypeVar


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
