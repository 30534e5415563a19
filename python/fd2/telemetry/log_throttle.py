"""One log line per cause per interval: an outage must not flood the log with its echoes.

While the Control Tower or Vault is down, the same warning would otherwise be written for every
cached project on every refresh round. The first occurrence of a cause is written at once; later
ones within the interval are counted, and the next line written for that cause says how many
were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

DEFAULT_INTERVAL_S: Final = 60.0
_MAX_CAUSES: Final = 1024


class ThrottledLog:
    __slots__ = ("_causes", "_clock", "_interval", "_logger")

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval_s
        self._clock = clock
        self._causes: dict[str, list[float]] = {}
        """cause → [time of the last line written, occurrences held back since]."""

    def log(self, level: int, cause: str, message: str, *args: object) -> bool:
        """Write `message % args` unless `cause` was written within the interval; True if
        written. `cause` names the problem, not its victim (one key for every project that an
        unreachable Control Tower affects)."""
        now = self._clock()
        seen = self._causes.get(cause)
        if seen is not None and now - seen[0] < self._interval:
            seen[1] += 1
            return False
        held = int(seen[1]) if seen is not None else 0
        if seen is None and len(self._causes) >= _MAX_CAUSES:
            self._causes.clear()  # bounded: causes built from outside data cannot grow forever
        self._causes[cause] = [now, 0]
        if held:
            message += " (%d more like this in the last %.0f s)"
            args = (*args, held, self._interval)
        self._logger.log(level, message, *args)
        return True

    def warning(self, cause: str, message: str, *args: object) -> bool:
        return self.log(logging.WARNING, cause, message, *args)

    def error(self, cause: str, message: str, *args: object) -> bool:
        return self.log(logging.ERROR, cause, message, *args)
