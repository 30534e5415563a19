"""The policies of `--cpu-scheduling`, each in a process of its own (they change the policy of
the process they run in): every thread gets its policy, also those started before; in a worker
the event loop's thread keeps the default policy and background threads run as batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fd2.serving.cpu_scheduling import apply_cpu_scheduling

_PROCESS = """
import os, sys, threading
from fd2.serving.cpu_scheduling import apply_cpu_scheduling
started = threading.Event(); stop = threading.Event()
def waits():
    started.set(); stop.wait()
before = threading.Thread(target=waits); before.start(); started.wait()
assert apply_cpu_scheduling(sys.argv[1]) is None
after = threading.Thread(target=stop.wait); after.start()
policies = {os.sched_getscheduler(int(tid)) for tid in os.listdir("/proc/self/task")}
stop.set(); before.join(); after.join()
print(sorted(policies))
"""

_WORKER = """
import asyncio, os, sys, threading
from fd2.serving.cpu_scheduling import schedule_worker_threads
stop = threading.Event()
async def main():
    before = threading.Thread(target=stop.wait); before.start()
    assert schedule_worker_threads(sys.argv[1], asyncio.get_running_loop()) is None
    # Started from the loop's thread just after start-up, as Granian starts its runtime.
    after = threading.Thread(target=stop.wait); after.start()
    background = await asyncio.to_thread(lambda: os.sched_getscheduler(0))
    await asyncio.sleep(1.3)
    loop_thread = os.sched_getscheduler(0)
    others = [os.sched_getscheduler(t.native_id) for t in (before, after)]
    stop.set(); before.join(); after.join()
    print([loop_thread, *others, background])
asyncio.run(main())
"""


def _run(code: str, choice: str, started_under: str) -> str:
    start = f"import os; os.sched_setscheduler(0, os.{started_under}, os.sched_param(0))\n"
    done = subprocess.run(
        [sys.executable, "-c", start + code, choice],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("choice", "policy", "started_under"),
    [("batch", os.SCHED_BATCH, "SCHED_OTHER"), ("normal", os.SCHED_OTHER, "SCHED_BATCH")],
)
def test_every_thread_of_the_process_gets_the_policy(
    choice: str, policy: int, started_under: str
) -> None:
    assert _run(_PROCESS, choice, started_under) == str([policy])


def test_a_batch_worker_keeps_its_loop_thread_normal_and_the_rest_batch() -> None:
    # [loop thread, threads started before and just after, a to_thread() thread]
    expected = [os.SCHED_OTHER, os.SCHED_BATCH, os.SCHED_BATCH, os.SCHED_BATCH]
    assert _run(_WORKER, "batch", "SCHED_OTHER") == str(expected)
    assert _run(_WORKER, "batch", "SCHED_BATCH") == str(expected)


def test_a_normal_worker_puts_every_thread_under_the_default() -> None:
    assert _run(_WORKER, "normal", "SCHED_BATCH") == str([os.SCHED_OTHER] * 4)


def test_a_refusal_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert apply_cpu_scheduling("batch") == "--cpu-scheduling batch: Operation not permitted"
