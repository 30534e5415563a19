"""fd2.deadlines: coarse time limits on a task's block of work."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from fd2.deadlines import SWEEP_S, Deadline


async def test_a_block_that_ends_in_time_is_left_alone() -> None:
    with Deadline(5):
        await asyncio.sleep(0.01)
    # Nothing cancelled the task later either.
    await asyncio.sleep(SWEEP_S * 2)


async def test_a_block_past_its_time_raises_timeout_error_within_a_sweep() -> None:
    began = time.monotonic()
    with pytest.raises(TimeoutError), Deadline(0.05):
        await asyncio.sleep(10)
    took = time.monotonic() - began
    assert 0.05 <= took < 0.05 + 3 * SWEEP_S
    # The cancellation was taken back: the task goes on normally.
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    await asyncio.sleep(0)


async def test_the_inner_of_two_nested_deadlines_fires_first() -> None:
    with Deadline(10) as outer:
        with pytest.raises(TimeoutError), Deadline(0.05):
            await asyncio.sleep(10)
        await asyncio.sleep(0.01)
    assert not outer.expired


async def test_the_outer_deadline_fires_through_an_inner_one() -> None:
    with pytest.raises(TimeoutError), Deadline(0.05), Deadline(10) as inner:
        await asyncio.sleep(10)
    assert not inner.expired


async def test_someone_elses_cancellation_stays_a_cancellation() -> None:
    async def work() -> None:
        with Deadline(10):
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_deadline_and_a_cancellation_together_stay_a_cancellation() -> None:
    """The task was also cancelled by someone else: that one must not be swallowed."""

    async def work() -> None:
        with Deadline(0.05):
            try:
                await asyncio.sleep(10)
            finally:
                # Cancelled by the deadline; someone else cancels it too before it leaves.
                me = asyncio.current_task()
                assert me is not None
                me.cancel()
                await asyncio.sleep(0)

    task = asyncio.create_task(work())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_push_back_moves_an_entered_deadline_on_and_inf_holds_it() -> None:
    """A stream's limit between pieces: each piece moves it on, a wait that is the client's
    holds it (`math.inf`), and a callback may move it too."""
    loop = asyncio.get_running_loop()
    deadline = Deadline(0.2)
    began = time.monotonic()
    with pytest.raises(TimeoutError), deadline:
        for _ in range(3):  # 0.45 s in all, never 0.2 s without a push
            await asyncio.sleep(0.15)
            deadline.push_back(0.2)
        deadline.push_back(math.inf)
        await asyncio.sleep(0.35)  # held: longer than the limit
        loop.call_later(0.1, deadline.push_back, 0.05)  # from a callback, as a relay's pieces
        await asyncio.sleep(10)
    assert deadline.expired
    took = time.monotonic() - began
    assert 0.95 <= took < 0.95 + 3 * SWEEP_S


async def test_push_back_after_the_block_arms_nothing() -> None:
    deadline = Deadline(5)
    with deadline:
        await asyncio.sleep(0)
    deadline.push_back(0.01)  # left: no sweep may cancel the task for it
    await asyncio.sleep(SWEEP_S * 3)
    assert not deadline.expired
