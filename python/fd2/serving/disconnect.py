"""Cancel work when the client goes away, so an abandoned request stops its upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fd2.serving.request import ClientDisconnected, Request

T = TypeVar("T")


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientDisconnected.

    Call only after the request body has been read: the watch consumes `receive`. The work runs
    in the current task, so cancelling it unwinds `async with` blocks such as an open upstream
    stream, which closes that upstream request. No task is started for the watch: a callback on
    the request's pending `receive` (`Request.on_disconnect`) cancels the current task.
    """
    task = asyncio.current_task()
    assert task is not None
    disconnected = False

    def _gone() -> None:
        nonlocal disconnected
        disconnected = True
        task.cancel()

    request.on_disconnect(_gone)
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            raise ClientDisconnected from None
        raise
    finally:
        request.on_disconnect(None)
