"""Type stub for fd2._native, the gateway's Rust extension (source: rust/src)."""

from typing import final

__all__ = ["NativeError", "SseEventTooLarge", "SseFramer", "SseStateError"]

class NativeError(Exception):
    """Root of every exception raised by fd2._native."""

class SseStateError(NativeError):
    """An SseFramer was called in a state that does not allow it (e.g. feed() after finish())."""

class SseEventTooLarge(NativeError):
    """One server-sent event grew beyond the framer's max_event_bytes."""

@final
class SseFramer:
    """Incremental framer for `text/event-stream` bytes.

    `feed()` returns the original bytes of every completed event (the very same
    object when nothing was held back and the chunk ends on an event boundary),
    `finish()` the remainder, closed with a blank line if it has content.
    """

    def __new__(cls, *, max_event_bytes: int = 16777216) -> SseFramer: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    @property
    def done(self) -> bool: ...
    @property
    def events(self) -> int: ...
    @property
    def buffered(self) -> int: ...
