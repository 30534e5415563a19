"""The step protocol and its composition."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Protocol

from fd2.module import Handler
from fd2.serving.request import Request
from fd2.types import Send


class Step(Protocol):
    """One stage in front of a route's handler. It may answer itself (or raise an Fd2Error)
    instead of calling `call_next`, wrap `send`, and act after `call_next` returns.

    An `async def` does; so does a plain function that hands back `call_next`'s awaitable when
    it has nothing to do afterwards (no coroutine frame of its own on the request's path)."""

    def __call__(self, request: Request, send: Send, call_next: Handler) -> Awaitable[None]: ...


def compose(steps: Sequence[Step], handler: Handler) -> Handler:
    """`handler` behind `steps`, the first step running first; with no steps, `handler` itself.

    Each step is bound to the one after it here, once: a request then makes one call per step
    (a C-level `partial` adds no Python frame of its own)."""
    composed = handler
    for step in reversed(steps):
        composed = partial(step.__call__, call_next=composed)
    return composed
