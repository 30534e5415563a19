"""A worker's drain at shutdown: learnt from the signal itself, bounded by a deadline.

Granian starts an application's lifespan shutdown only after every request in flight has ended,
so a stream that outlives `--shutdown-timeout` would be killed with the worker, cut mid-body with
nothing to tell its client. fd2 therefore listens for SIGTERM (and SIGINT) itself, next to
Granian, and at the deadline ends what still runs in a way a client can tell: work that holds a
`drain_guard()` is cancelled and answers for itself (a stream, with a final error event).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Final

from fd2.loop_workers import current_task

_log = logging.getLogger("fd2.draining")
_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


class Drain:
    """The process's drain state and the work to end at its deadline (one per worker process)."""

    __slots__ = ("_cut", "_held", "expired")

    def __init__(self) -> None:
        self.expired = False
        self._held: set[asyncio.Task[Any]] = set()
        self._cut: set[asyncio.Task[Any]] = set()

    @property
    def held(self) -> int:
        """Pieces of work that would be ended at the deadline now."""
        return len(self._held)

    def cut(self) -> int:
        """The deadline: cancel every piece of work held; returns how many there were."""
        self.expired = True
        tasks = list(self._held)
        for task in tasks:
            self._cancel(task)
        return len(tasks)

    def hold(self, task: asyncio.Task[Any]) -> None:
        self._held.add(task)
        if self.expired:  # work that starts past the deadline is ended at its first wait
            self._cancel(task)

    def release(self, task: asyncio.Task[Any]) -> None:
        self._held.discard(task)
        self._cut.discard(task)

    def take_cut(self, task: asyncio.Task[Any]) -> bool:
        """True when the deadline cancelled `task` and nothing else did: that cancellation is
        taken back. False: the cancellation is someone else's (or also someone else's)."""
        if task not in self._cut:
            return False
        self.release(task)
        return task.uncancel() == 0

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        if task not in self._cut:
            self._cut.add(task)
            task.cancel()


class DrainGuard:
    """Marks the current task as work to end at the drain deadline, for as long as it is held.

    When the deadline comes the task is cancelled; the holder catches `asyncio.CancelledError`,
    asks `take_cut()` whether the drain did it, and if so ends its answer itself instead of
    unwinding. Entering and leaving cost a set insertion and removal (per request, not per chunk).
    """

    __slots__ = ("_drain", "_task")

    def __init__(self, drain: Drain) -> None:
        self._drain = drain
        self._task: asyncio.Task[Any] = current_task()

    def __enter__(self) -> DrainGuard:
        self._drain.hold(self._task)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._drain.release(self._task)

    def take_cut(self) -> bool:
        """True when the drain deadline cancelled this task and nothing else did: the
        cancellation is taken back, and the caller ends its answer. False: re-raise."""
        return self._drain.take_cut(self._task)


_DRAIN: Drain | None = None


def current_drain() -> Drain:
    """This process's drain (created on first use: importing fd2 does no work)."""
    global _DRAIN  # one per process by nature: signals are per process
    if _DRAIN is None:
        _DRAIN = Drain()
    return _DRAIN


def drain_guard() -> DrainGuard:
    """`with drain_guard() as guard:` around work that must end with an answer of its own when
    the shutdown deadline comes (see `DrainGuard`). Call it in the task doing that work."""
    return DrainGuard(_DRAIN if _DRAIN is not None else current_drain())


def on_termination(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
    """Call `callback` in `loop` when the process gets SIGTERM or SIGINT, keeping the handlers
    already installed (Granian's, through the loop) working. Must run in the main thread; returns
    False where signals cannot be watched (then the drain starts at the lifespan shutdown).

    The event loop's own signal handlers are one per signal, and Granian holds those. What it
    installs at the Python level is only a placeholder that makes the interpreter report the
    signal to the loop (through the wake-up descriptor, which does not depend on that
    placeholder); putting ours in its place, calling it on, leaves Granian's handling untouched.
    """

    def chained(previous: Any) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(callback)
            if callable(previous):
                previous(signum, frame)

        return handler

    try:
        for signum in _SIGNALS:
            signal.signal(signum, chained(signal.getsignal(signum)))
    except ValueError:  # not the main thread
        _log.debug("shutdown signals cannot be watched here; draining at lifespan shutdown")
        return False
    return True
