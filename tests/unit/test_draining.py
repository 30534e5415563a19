"""fd2.serving.draining: work held by a guard is cancelled at the deadline and told apart from other
cancellations; the signal hook keeps the event loop's own handler (Granian's) working."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from fd2.serving.draining import Drain, DrainGuard


async def test_the_deadline_cancels_held_work_which_takes_the_cut_back() -> None:
    drain = Drain()
    entered = asyncio.Event()
    outcome: list[str] = []

    async def work() -> None:
        with DrainGuard(drain) as guard:
            entered.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                outcome.append("cut" if guard.take_cut() else "cancelled")
                await asyncio.sleep(0)  # the task runs on: the cancellation was taken back

    task = asyncio.create_task(work())
    await entered.wait()
    assert drain.held == 1
    assert drain.cut() == 1
    await task
    assert outcome == ["cut"]
    assert drain.held == 0


async def test_other_cancellations_are_not_taken() -> None:
    drain = Drain()
    entered = asyncio.Event()
    outcome: list[bool] = []

    async def work() -> None:
        with DrainGuard(drain) as guard:
            entered.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                outcome.append(guard.take_cut())
                raise

    for also_cut in (False, True):
        outcome.clear()
        entered.clear()
        task = asyncio.create_task(work())
        await entered.wait()
        task.cancel()  # e.g. the client went away
        if also_cut:
            drain.cut()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert outcome == [False]


async def test_work_starting_after_the_deadline_is_ended_at_its_first_wait() -> None:
    drain = Drain()
    drain.cut()

    async def work() -> bool:
        with DrainGuard(drain) as guard:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return guard.take_cut()
        return False

    assert await asyncio.wait_for(work(), 2) is True


_HOOK = """
import asyncio, os, signal, uvloop
from fd2.serving.draining import on_termination

async def main():
    loop = asyncio.get_running_loop()
    seen = []
    done = asyncio.Event()
    # As Granian's worker does before the application starts.
    loop.add_signal_handler(signal.SIGTERM, lambda: (seen.append("granian"), done.set()))
    assert on_termination(loop, lambda: seen.append("fd2"))
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.05)
    print(sorted(seen))

uvloop.run(main())
"""


def test_the_signal_hook_chains_to_the_loops_own_handler() -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_HOOK)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['fd2', 'granian']"
