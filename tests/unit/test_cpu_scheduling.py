"""apply_cpu_scheduling in a process of its own (it changes the policy of the process it runs
in): every thread, also those started before it, gets the policy; a refusal is reported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fd2.cli.cpu_scheduling import apply_cpu_scheduling

_CHILD = """
import os, sys, threading
from fd2.cli.cpu_scheduling import apply_cpu_scheduling
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


@pytest.mark.parametrize(
    ("choice", "policy"), [("batch", os.SCHED_BATCH), ("normal", os.SCHED_OTHER)]
)
def test_every_thread_gets_the_policy(choice: str, policy: int) -> None:
    # Started under the other policy, so that the change is seen.
    other = "SCHED_OTHER" if choice == "batch" else "SCHED_BATCH"
    start = f"import os; os.sched_setscheduler(0, os.{other}, os.sched_param(0))\n"
    done = subprocess.run(
        [sys.executable, "-c", start + _CHILD, choice],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([policy])


def test_a_refusal_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert apply_cpu_scheduling("batch") == "--cpu-scheduling batch: Operation not permitted"
