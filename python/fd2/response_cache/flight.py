"""Single flight within one worker: identical misses wait for the first one's answer.

Across workers and replicas a short Redis lock does the same (`store.CacheStore.lock`); in
process a future is cheaper than polling Redis and wakes the waiters as soon as the answer ends.
"""

from __future__ import annotations

import asyncio

from fd2.response_cache.entry import Entry


class Flights:
    __slots__ = ("_running",)

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[Entry | None]] = {}

    def join(self, key: str) -> asyncio.Future[Entry | None] | None:
        """The flight already fetching `key` (to await), or None: the caller leads a new one
        and must `land` it."""
        flight = self._running.get(key)
        if flight is not None:
            return flight
        self._running[key] = asyncio.get_running_loop().create_future()
        return None

    def land(self, key: str, entry: Entry | None) -> None:
        """Ends the caller's flight: waiters get `entry` (None: fetch for yourselves)."""
        flight = self._running.pop(key, None)
        if flight is not None and not flight.done():
            flight.set_result(entry)
