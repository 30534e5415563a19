"""Run awaitables together; on the first failure cancel the rest and raise that failure alone.

`asyncio.TaskGroup` cancels the siblings but raises an ExceptionGroup; the run's caller must see
the one error that stopped it (a node's 502, the 429 it met), rendered as fd2 renders errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


async def all_or_first_error(work: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    if len(work) == 1:
        return [await work[0]]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(item) for item in work]
    except BaseExceptionGroup as failed:
        raise _first_leaf(failed) from None
    return [task.result() for task in tasks]


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
