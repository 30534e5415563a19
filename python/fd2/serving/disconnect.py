"""Cancel work when the client goes away, so an abandoned request stops its upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fd2.loop_workers import current_task, on_loop
from fd2.serving.request import ClientDisconnected, Request

T = TypeVar("T")

_TICK_S = 0.05
_IDLE_TICKS = 100


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientDisconnected.

    Call only after the request body has been read: the watch consumes `receive`. The work runs
    in the current task, so cancelling it unwinds `async with` blocks such as an open upstream
    stream, which closes that upstream request.

    No task per request, and no watch at all for the many requests that end within a few
    milliseconds: asking the server for the next message (`receive()`) was ~5% of a request's
    CPU. A request still running 50-100 ms after it began to wait is watched from then on (one
    callback on the server's pending `receive`, `Request.on_disconnect`): a client that leaves
    is noticed within ~0.1 s of the start, at once after that.
    """
    task = current_task()
    disconnected = False

    def _gone() -> None:
        nonlocal disconnected
        disconnected = True
        task.cancel()

    watches = _watches(task.get_loop())
    watches.young[request] = _gone
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            raise ClientDisconnected from None
        raise
    finally:
        if watches.young.pop(request, None) is None and watches.old.pop(request, None) is None:
            request.on_disconnect(None)  # its watch had started


class _Watches:
    """The requests of one event loop waiting in `cancel_on_disconnect`, by age: each tick the
    older ones start being watched and the young ones become old."""

    __slots__ = ("old", "task", "young")

    def __init__(self) -> None:
        self.young: dict[Request, Callable[[], None]] = {}
        self.old: dict[Request, Callable[[], None]] = {}
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        idle = 0
        while idle < _IDLE_TICKS:
            await asyncio.sleep(_TICK_S)
            if not (self.young or self.old):
                idle += 1
                continue
            idle = 0
            old, self.old, self.young = self.old, self.young, {}
            for request, gone in old.items():
                request.on_disconnect(gone)


_by_loop: dict[asyncio.AbstractEventLoop, _Watches] = {}


def _watches(loop: asyncio.AbstractEventLoop) -> _Watches:
    return on_loop(_by_loop, loop, _Watches)
