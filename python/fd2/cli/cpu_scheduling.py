"""`--cpu-scheduling`: the Linux scheduling policy fd2's processes run under.

A Granian worker is three threads that hand every request to each other: Granian's I/O thread
(tokio), its thread that calls into Python, and the event loop. Under Linux's default policy each
hand-off wakes a thread that preempts the one that woke it, so a request costs several context
switches on the worker's core. Under SCHED_BATCH a woken thread does not preempt: the running
thread goes on until it waits, and the woken one runs then. On a core of its own that cut a
worker's CPU per request by ~30% (docs/performance.md). Its price: a batch thread woken while a
busy neighbour runs on the same core waits for the neighbour's time slice, where a normal one
would preempt it (docs/operations.md, "CPU scheduling").

Set in `fd2 serve`'s process before Granian starts: workers and every thread they start inherit
it (a policy survives fork and exec).
"""

from __future__ import annotations

import os
from typing import Final, Literal

CpuScheduling = Literal["batch", "normal"]

_POLICIES: Final = {"batch": "SCHED_BATCH", "normal": "SCHED_OTHER"}


def apply_cpu_scheduling(choice: CpuScheduling) -> str | None:
    """Puts every thread of this process under `choice`'s policy (nice values kept).

    Returns None when done, else why not (the caller warns and serves on: the policy changes
    speed, never behaviour)."""
    policy = getattr(os, _POLICIES[choice], None)
    if policy is None or not hasattr(os, "sched_setscheduler"):
        return f"--cpu-scheduling {choice}: not available on this system"
    param = os.sched_param(0)
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc: this thread only (threads started later inherit it)
    for tid in threads:
        try:
            os.sched_setscheduler(tid, policy, param)
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
        except OSError as exc:
            return f"--cpu-scheduling {choice}: {exc.strerror or exc}"
    return None
