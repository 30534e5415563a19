"""`--cpu-scheduling`: the Linux scheduling policies fd2's threads run under.

A Granian worker hands every request between threads: Granian's I/O thread (tokio), its thread
that calls into Python, and the event loop, which does fd2's work. Under Linux's default policy
each hand-off wakes a thread that preempts the one that woke it: several context switches per
request on the worker's core. With `batch`, every thread but the event loop's runs as
SCHED_BATCH, whose woken threads do not preempt: the loop goes on until it waits, and Granian's
threads run then, taking what has queued up meanwhile. The loop keeps the default policy, so
that it still preempts the others (and a background thread holding the GIL) when it is woken. On
a core of its own that cut a worker's CPU per request by about a third (docs/performance.md). Its
price: Granian's I/O thread, woken while a busy neighbour runs on the same core, waits for the
neighbour's time slice (docs/operations.md, "CPU scheduling").

`fd2 serve` puts its whole process under the chosen policy before Granian starts; each worker
sets its own threads at start-up (`schedule_worker_threads`). A thread inherits the policy of
the thread that starts it: Granian starts its runtime from the loop's thread just after the
lifespan start-up, so that thread turns normal only a second later; the threads Granian starts
after that come from its own (batch) threads, and the default executor's threads set batch
themselves.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Final, Literal

CpuScheduling = Literal["batch", "normal"]

_BATCH: Final = getattr(os, "SCHED_BATCH", None)
_NORMAL: Final = getattr(os, "SCHED_OTHER", None)


def apply_cpu_scheduling(choice: CpuScheduling) -> str | None:
    """Puts every thread of this process under `choice`'s policy (nice values kept).

    Returns None when done, else why not (the caller warns and serves on: the policy changes
    speed, never behaviour)."""
    policy = _BATCH if choice == "batch" else _NORMAL
    return _set(_threads(), policy, choice)


def schedule_worker_threads(choice: CpuScheduling, loop: asyncio.AbstractEventLoop) -> str | None:
    """In a worker, at start-up on its event loop's thread. With `batch`: every thread as
    SCHED_BATCH, the loop's default executor starting its threads so, and the loop's own thread
    back to the default policy once Granian has started its threads (it starts them from this
    thread after the lifespan start-up, and they inherit its policy). With `normal`: all under
    the default. Returns None when done, else why not."""
    if choice == "normal":
        return apply_cpu_scheduling("normal")
    refused = apply_cpu_scheduling("batch")
    if refused is None:
        loop.set_default_executor(
            ThreadPoolExecutor(thread_name_prefix="fd2-background", initializer=_batch_this_thread)
        )
        loop.call_later(_GRANIAN_STARTED_S, _set, [threading.get_native_id()], _NORMAL, choice)
    return refused


_GRANIAN_STARTED_S: Final = 1.0
"""After the lifespan start-up, by when Granian has started its threads (milliseconds)."""


def _batch_this_thread() -> None:
    _set([threading.get_native_id()], _BATCH, "batch")


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [threading.get_native_id()]  # no /proc: this thread (later ones inherit it)


def _set(threads: list[int], policy: int | None, choice: str) -> str | None:
    if policy is None or not hasattr(os, "sched_setscheduler"):
        return f"--cpu-scheduling {choice}: not available on this system"
    param = os.sched_param(0)
    for tid in threads:
        try:
            os.sched_setscheduler(tid, policy, param)
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
        except OSError as exc:
            return f"--cpu-scheduling {choice}: {exc.strerror or exc}"
    return None
