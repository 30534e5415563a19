"""Long control-plane work cut into short slices of the event loop's time.

A route build, or a pass over every route of a 10k-route table, held the loop for as long as it
took: every request in flight waited that long (the p99 under rebuilds). `Slices.pause()` yields
the loop once at least `budget_s` has passed since the last yield, so the work runs in slices of
about that length (plus one item's); yielding on every item would cost a loop turn per item
(~5 µs each).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

DEFAULT_BUDGET_S: Final = 0.00025


class Slices:
    __slots__ = ("_budget_s", "_since", "whole")

    def __init__(self, budget_s: float = DEFAULT_BUDGET_S) -> None:
        self._budget_s = budget_s
        self._since = time.perf_counter()
        self.whole = False
        """Set while nothing is served (the start-up build): the work runs without yielding."""

    async def pause(self) -> None:
        if self.whole:
            return
        if time.perf_counter() - self._since >= self._budget_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
