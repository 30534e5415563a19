"""A stream's upstream body relayed from the connection's own callbacks, not read by a task.

Read by the relay's task (`Response.next_chunk`), every piece of a stream woke that task: a
future resolved, the loop's next turn, then the task's whole chain of coroutines resumed (the
core's, the route's steps', the relay's) before the piece was framed and sent. At a stream's
first token, after the worker had sat idle, that was ~50 µs of cold work (docs/performance.md).
Pushed (`Response.push_to`), a piece is framed and handed to the server's `send` in the callback
that parsed it, and the task sleeps until the body is over.

`send` runs in a copy of the request task's context. A server's `send` that is done at once
(Granian's for a stream, while its channel has room) costs nothing more. One that has to wait is
driven here as a task would drive it (its future's done callback resumes it); meanwhile the
pieces that arrive are held in order, the upstream is paused once they grow past
`_HOLD_BACK_AT`, and the time limit between pieces is held (the wait is the client's, not the
upstream's).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import Context, copy_context
from typing import Any, Final

from fd2.deadlines import Deadline
from fd2.futures import settle
from fd2.http_client import ReadTimeout, Response
from fd2.loop_workers import current_task
from fd2.types import Send

Framed = Callable[[bytes], bytes | None]
"""A piece of the upstream's body → the bytes to send the client now (None: nothing yet)."""

_HOLD_BACK_AT: Final = 256 * 1024
"""Bytes held behind a waiting `send` at which the upstream is paused (as `Response` buffers)."""
_ENDED: Final = object()
_DONE: Final = object()


async def relay_pushed(
    response: Response, framed: Framed, send: Send, read_s: float, head: bytes = b""
) -> None:
    """Relays `response`'s body to `send`, each piece through `framed`, `head` first (the
    pieces a caller read already). Returns once the body is over and sent; raises what ended
    it otherwise: the connection's error, ReadTimeout when nothing arrives for `read_s`, or
    what `framed` or `send` raised."""
    task = current_task()
    pushed = _Pushed(response, framed, send, task, read_s)
    deadline = pushed.deadline
    try:
        with deadline:
            if head:
                pushed.take(head)
            response.push_to(pushed)  # pieces already here, from this task (its context)
            pushed.in_task = False
            await pushed.finished
    except TimeoutError:
        raise ReadTimeout("the upstream sent nothing in time") from None
    finally:
        pushed.close()


class _Pushed:
    """The `BodySink` of one relay (see the module docstring)."""

    __slots__ = (
        "_context",
        "_end",
        "_framed",
        "_held",
        "_held_bytes",
        "_loop",
        "_read_s",
        "_response",
        "_send",
        "_waiting",
        "_waiting_on",
        "closed",
        "deadline",
        "finished",
        "in_task",
    )

    def __init__(
        self,
        response: Response,
        framed: Framed,
        send: Send,
        task: asyncio.Task[Any],
        read_s: float,
    ) -> None:
        self._response = response
        self._framed = framed
        self._send = send
        # The request's context vars as they are now (log fields, trace ids): what `send` sees
        # when a callback runs it (Task.get_context() is 3.12's).
        self._context: Context = copy_context()
        self._loop = task.get_loop()
        self._read_s = read_s
        self.deadline = Deadline(read_s, task)
        self.finished: asyncio.Future[None] = self._loop.create_future()
        self._held: deque[bytes] = deque()
        """Pieces that arrived while a `send` waited, in order."""
        self._held_bytes = 0
        self._waiting: Iterator[Any] | None = None
        """The `send` that waits, to be resumed when what it waits on is done."""
        self._waiting_on: Any = None
        self._end: object = None
        """`_ENDED` or the body's error once it is over while pieces are still held."""
        self.in_task = True
        """Whether the calls come from the relay's task (else from the connection's callbacks,
        which run in no task's context)."""
        self.closed = False

    # BodySink: called from the connection's protocol callbacks ---------------------------------

    def body_piece(self, piece: bytes) -> None:
        if self.in_task:
            self.take(piece)
        else:
            self._context.run(self.take, piece)

    def body_end(self, error: BaseException | None) -> None:
        if self.closed:
            return
        if self._waiting is not None or self._held:
            self._end = _ENDED if error is None else error  # after the held pieces
            return
        settle(self.finished, error)

    # ------------------------------------------------------------------------------------------

    def take(self, piece: bytes) -> None:
        if self.closed:
            return
        if self._waiting is not None:  # behind the send that waits, in order
            self._held.append(piece)
            self._held_bytes += len(piece)
            if self._held_bytes > _HOLD_BACK_AT:
                self._response.pause()
            return
        self.deadline.push_back(self._read_s)
        try:  # `_forward`, spelled out: once per piece of every stream
            out = self._framed(piece)
            if out:
                sending = self._send({"type": "http.response.body", "body": out, "more_body": True})
                steps = sending.__await__()
                waits_on = next(steps, _DONE)  # as far as it goes now
                if waits_on is not _DONE:
                    self._wait(steps, waits_on)
        except BaseException as exc:  # handed to the task, which raises it
            self._fail(exc)

    def _forward(self, piece: bytes) -> None:
        out = self._framed(piece)
        if out:
            sending = self._send({"type": "http.response.body", "body": out, "more_body": True})
            self._step(sending.__await__())

    def _step(self, steps: Iterator[Any]) -> None:
        """Runs a `send` on as far as it goes now."""
        # A default, not StopIteration caught: a C awaitable that is done (Granian's) and a
        # coroutine that returned None then raise nothing at all.
        waits_on = next(steps, _DONE)
        if waits_on is not _DONE:
            self._wait(steps, waits_on)

    def _wait(self, steps: Iterator[Any], waits_on: Any) -> None:
        """The `send` waits on `waits_on`: what a Task does with what a coroutine yields (a
        future to wait for, or with a bare `yield` the loop's next turn), and what arrives
        meanwhile is held."""
        self._waiting = steps
        self._waiting_on = waits_on
        self.deadline.push_back(math.inf)
        if waits_on is None:
            self._loop.call_soon(self._resume, None, context=self._context)
            return
        if getattr(waits_on, "_asyncio_future_blocking", None) is None:
            raise RuntimeError(f"send yielded {waits_on!r}, not a future")
        waits_on._asyncio_future_blocking = False
        waits_on.add_done_callback(self._resume, context=self._context)

    def _resume(self, _done: object) -> None:
        """What the waiting `send` waited on is done: run it on, then the held pieces."""
        steps = self._waiting
        if self.closed or steps is None:
            return
        self._waiting = self._waiting_on = None
        try:
            self._step(steps)
            while self._waiting is None and self._held:
                piece = self._held.popleft()
                self._held_bytes -= len(piece)
                self._forward(piece)
        except BaseException as exc:  # handed to the task, which raises it
            self._fail(exc)
            return
        if self._waiting is not None:
            return
        self.deadline.push_back(self._read_s)
        self._response.resume()
        end, self._end = self._end, None
        if end is _ENDED:
            settle(self.finished, None)
        elif isinstance(end, BaseException):
            settle(self.finished, end)

    def _fail(self, error: BaseException) -> None:
        self._response.detach()
        self._drop()
        if isinstance(error, asyncio.CancelledError):
            self.finished.cancel()
        else:
            settle(self.finished, error)

    def _drop(self) -> None:
        self.closed = True
        self._held.clear()
        steps, waits_on = self._waiting, self._waiting_on
        self._waiting = self._waiting_on = None
        if waits_on is not None and hasattr(waits_on, "cancel"):
            waits_on.cancel()
        close = getattr(steps, "close", None)  # a coroutine's: its `finally` blocks run
        if close is not None:
            close()

    def close(self) -> None:
        """The relay is over (ended, failed or cancelled): nothing more is taken or sent."""
        self._response.detach()  # also after a failure while `push_to` attached it
        if not self.closed:
            self._drop()
        finished = self.finished
        if finished.done() and not finished.cancelled():
            finished.exception()  # retrieved: raised already, or not wanted any more
