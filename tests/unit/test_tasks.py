"""The supervisor of background tasks: restarts with back-off, logs, stops everything at the end."""

import asyncio
import itertools
import logging

import pytest

from fd2.control.tasks import Supervisor

FAST = (0.01, 0.04)


async def test_a_task_that_raises_is_logged_and_restarted_with_growing_back_off(caplog):
    supervisor = Supervisor(backoff_s=FAST)
    starts: list[float] = []
    loop = asyncio.get_running_loop()
    up = asyncio.Event()

    async def flaky() -> None:
        starts.append(loop.time())
        if len(starts) < 4:
            raise RuntimeError("secret-in-message-123")
        up.set()
        await asyncio.Event().wait()  # the fourth run stays up

    with caplog.at_level(logging.ERROR, logger="fd2.tasks"):
        job = supervisor.spawn("flaky", flaky)
        await asyncio.wait_for(up.wait(), 5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] >= 0.008 and gaps[1] >= 0.016 and gaps[2] >= 0.03  # 0.01, 0.02, 0.04 (x0.8+)
    assert job.restarts == 3 and job.last_error == "RuntimeError"
    assert "background task 'flaky' failed (RuntimeError); restarting" in caplog.text
    assert "secret-in-message-123" not in caplog.text  # the type is logged, never the message
    await supervisor.aclose()
    assert job.task is not None and job.task.cancelled()


async def test_repeated_crashes_of_one_cause_are_logged_once(caplog):
    supervisor = Supervisor(backoff_s=(0.001, 0.001))
    runs = 0
    enough = asyncio.Event()

    async def always_fails() -> None:
        nonlocal runs
        runs += 1
        if runs == 20:
            enough.set()
        raise ValueError

    with caplog.at_level(logging.ERROR, logger="fd2.tasks"):
        supervisor.spawn("broken", always_fails)
        await asyncio.wait_for(enough.wait(), 5)
        await supervisor.aclose()
    assert caplog.text.count("background task 'broken' failed") == 1


async def test_the_back_off_starts_again_after_a_healthy_run():
    supervisor = Supervisor(backoff_s=(0.005, 10.0), healthy_after_s=0.05)
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    seventh = asyncio.Event()

    async def run() -> None:
        starts.append(loop.time())
        if len(starts) == 6:
            await asyncio.sleep(0.06)  # healthy long enough: the next back-off is the first one
        if len(starts) == 7:
            seventh.set()
        raise RuntimeError

    supervisor.spawn("job", run)
    await asyncio.wait_for(seventh.wait(), 5)
    await supervisor.aclose()
    # 0.005 s again, where the sixth failure in a row would have waited 0.16 s.
    assert starts[6] - starts[5] < 0.06 + 0.09


async def test_every_ticks_and_a_failing_tick_does_not_end_the_loop():
    supervisor = Supervisor(backoff_s=(0.001, 0.001))
    ticks = 0
    fifth = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 2:
            raise OSError
        if ticks == 5:
            fifth.set()

    job = supervisor.every("ticker", 0.005, tick)
    await asyncio.wait_for(fifth.wait(), 5)
    await supervisor.aclose()
    assert job.restarts == 1


async def test_a_dynamic_interval_and_a_first_delay():
    supervisor = Supervisor()
    asked = 0
    ticked = asyncio.Event()

    def interval() -> float:
        nonlocal asked
        asked += 1
        return 60.0

    supervisor.every("once", interval, _set(ticked), first_delay_s=0.0)
    await asyncio.wait_for(ticked.wait(), 1.0)
    await supervisor.aclose()
    assert asked == 1  # asked for the wait after the first tick, not before it


async def test_a_task_that_returns_has_finished_and_is_forgotten():
    supervisor = Supervisor()
    done = asyncio.Event()
    job = supervisor.spawn("once", _set(done))
    await asyncio.wait_for(done.wait(), 1.0)
    assert job.task is not None
    await job.task
    assert job.restarts == 0 and supervisor.tasks == []


async def test_closing_a_child_stops_only_its_tasks_and_closing_the_root_stops_all():
    root = Supervisor()
    module = root.child("acme/chat [dev]")
    other = root.child("acme/embed [dev]")
    forever = asyncio.Event()
    mine = module.spawn("poller", forever.wait)
    theirs = other.spawn("poller", forever.wait)
    kept = root.spawn("refresh", forever.wait)
    assert [job.name for job in root.tasks] == [
        "refresh",
        "acme/chat [dev]: poller",
        "acme/embed [dev]: poller",
    ]
    await module.aclose()
    await asyncio.sleep(0)
    assert mine.task is not None and mine.task.cancelled()
    assert theirs.task is not None and not theirs.task.done()
    assert [job.name for job in root.tasks] == ["refresh", "acme/embed [dev]: poller"]
    with pytest.raises(RuntimeError):
        module.spawn("late", forever.wait)
    await root.aclose()
    assert theirs.task.cancelled() and kept.task is not None and kept.task.cancelled()
    with pytest.raises(RuntimeError):
        root.child("late")


def _set(event: asyncio.Event):
    async def run() -> None:
        event.set()

    return run


def test_a_child_scope_is_what_init_would_make() -> None:
    # `child` fills a scope in directly (no keyword call per route): every slot as __init__'s.
    parent = Supervisor("worker", backoff_s=(0.5, 4.0), healthy_after_s=7.0)
    child = parent.child("p/m [dev]")
    made = Supervisor("worker: p/m [dev]", backoff_s=(0.5, 4.0), healthy_after_s=7.0, parent=parent)
    slots = [slot for slot in Supervisor.__slots__ if slot != "__weakref__"]
    assert {slot: getattr(child, slot) for slot in slots} == {
        slot: getattr(made, slot) for slot in slots
    }
    assert child._crash_log is parent._crash_log
    assert Supervisor().child("x").name == "x"
