"""The running task without `getpid`: right across loops, threads and forks."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from fd2 import loop_workers
from fd2.loop_workers import current_task


def test_each_new_loop_in_one_thread_is_seen() -> None:
    seen = []
    for _ in range(3):

        async def look() -> None:
            seen.append((current_task(), asyncio.current_task()))

        asyncio.run(look())
    assert len(seen) == 3
    assert all(mine is theirs for mine, theirs in seen)


def test_loops_running_in_two_threads_at_once_are_told_apart() -> None:
    ready = threading.Barrier(2)
    results: dict[str, bool] = {}

    def run(name: str) -> None:
        async def look() -> None:
            ready.wait(5)  # both loops are running now
            for _ in range(100):
                assert current_task() is asyncio.current_task()
                await asyncio.sleep(0)
            results[name] = True

        asyncio.run(look())

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == {"a": True, "b": True}


def test_a_task_sees_itself_across_awaits() -> None:
    async def main() -> None:
        async def child() -> asyncio.Task[object]:
            await asyncio.sleep(0)
            return current_task()

        task = asyncio.ensure_future(child())
        assert await task is task
        assert current_task() is asyncio.current_task()

    asyncio.run(main())


def test_outside_a_loop_it_raises_as_asyncio_does() -> None:
    with pytest.raises(RuntimeError):
        current_task()


def test_a_forked_child_forgets_the_loops_its_parent_saw() -> None:
    async def look() -> None:
        current_task()

    asyncio.run(look())
    assert loop_workers._running  # the entry stays after the loop ends
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing its parent saw may be taken for this thread's loop
        os.write(write, b"1" if not loop_workers._running else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
