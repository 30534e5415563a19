"""Cancel work when the client goes away, so an abandoned request stops its upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fd2.serving.request import ClientDisconnected, Request

T = TypeVar("T")


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientDisconnected.

    Call only after the request body has been read: the watcher consumes `receive`. The work runs
    in the current task (one extra task per request, for the watcher), so cancelling it unwinds
    `async with` blocks such as an open upstream stream, which closes that upstream request.
    """
    task = asyncio.current_task()
    assert task is not None
    disconnected = False

    def _on_watcher_done(watcher: asyncio.Task[None]) -> None:
        nonlocal disconnected
        if not watcher.cancelled() and watcher.exception() is None:
            disconnected = True
            task.cancel()

    watcher = asyncio.get_running_loop().create_task(request.wait_for_disconnect())
    watcher.add_done_callback(_on_watcher_done)
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            raise ClientDisconnected from None
        raise
    finally:
        watcher.remove_done_callback(_on_watcher_done)
        watcher.cancel()
