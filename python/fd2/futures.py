"""Completing a future from a callback that may come after someone else completed it."""

from __future__ import annotations

import asyncio


def settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    """`future` done: with `error` as its exception, else with None. Nothing if it is done
    already (cancelled by its waiter, or settled by an earlier callback)."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
