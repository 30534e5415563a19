"""fd2.deadlines: coarse time limits on a task's block of work."""

from __future__ import annotations

import asyncio
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
