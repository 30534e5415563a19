"""AWS's `application/vnd.amazon.eventstream` framing as the module's Deframer (the seam
`fd2_inference.framing` looks up): bytes in, StreamEvents out.

The binary framing is decoded natively (`fd2._native.EventStreamDecoder`: CRCs, lengths, typed
headers). Here each message becomes a StreamEvent named by its `:event-type` header; a message
whose `:message-type` is `exception` (Bedrock's `throttlingException`, `validationException`, ...)
or `error`, and bytes that fail their CRC, end the stream with ProviderStreamError.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import Final

from fd2._native import EventStreamDecoder, EventStreamError
from fd2_inference.providers.base import ProviderFailure, ProviderStreamError, StreamEvent
from fd2_inference.providers.bedrock_errors import exception_failure

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""AWS's own ceiling for one event stream message; a bigger one is refused before it is held."""


class EventStreamCorrupt(ProviderStreamError, ValueError):
    """Bytes that are not a valid event stream (a CRC mismatch, an impossible length): a
    ProviderStreamError for the relay, and the ValueError the Deframer seam documents."""


def corrupt_failure(detail: str) -> ProviderFailure:
    return ProviderFailure(
        status=502,
        type="upstream_error",
        message=f"The provider's event stream is corrupt ({detail}).",
        code="bad_gateway",
    )


class EventStreamDeframer:
    """One stream's decoder: `feed` returns the events each chunk completed, `finish` the size of
    an unfinished last message (the relay decides what a cut stream means). A chunk holding
    events and then a failure returns the events; the next call raises the failure (the text
    before it still reaches the client)."""

    __slots__ = ("_decoder", "_pending")

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._decoder = EventStreamDecoder(max_message_bytes=max_message_bytes)
        self._pending: ProviderStreamError | None = None

    def feed(self, chunk: bytes) -> Sequence[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        try:
            messages = self._decoder.feed(chunk)
        except EventStreamError as exc:
            # The native message says which check failed; it holds no payload bytes.
            raise EventStreamCorrupt(corrupt_failure(str(exc))) from None
        events: list[StreamEvent] = []
        for headers, payload in messages:
            kind = headers.get(":message-type", "event")
            if kind == "event":
                name = headers.get(":event-type")
                events.append(StreamEvent(name if isinstance(name, str) else None, payload))
            elif isinstance(kind, str) and kind in ("exception", "error"):
                failure = ProviderStreamError(_failure_of(kind, headers, payload))
                if not events:
                    raise failure
                self._pending = failure
                break
            # Other message types (none defined for Bedrock today) carry nothing to relay.
        return events

    def finish(self) -> int:
        if self._pending is not None:
            raise self._pending
        try:
            return self._decoder.finish()
        except EventStreamError as exc:  # one met after the last chunk's good events
            raise EventStreamCorrupt(corrupt_failure(str(exc))) from None


def _failure_of(kind: str, headers: Mapping[str, object], payload: bytes) -> ProviderFailure:
    """An `exception` message names its kind in `:exception-type` (its payload has the message);
    an `error` message has `:error-code` and `:error-message` headers."""
    if kind == "exception":
        name = headers.get(":exception-type")
        return exception_failure(name if isinstance(name, str) else "", payload)
    code = headers.get(":error-code")
    message = headers.get(":error-message")
    return exception_failure(
        code if isinstance(code, str) else "",
        b"",
        message=message if isinstance(message, str) else "",
    )


def frame_eventstream() -> EventStreamDeframer:
    """A new Deframer for one AWS event stream (`fd2_inference.providers.base.FrameEventstream`)."""
    return EventStreamDeframer()


async def events_of(chunks: AsyncIterable[bytes]) -> AsyncIterator[StreamEvent]:
    """The events of a whole stream of chunks; a stream that ends inside a message raises
    ProviderStreamError (a cut stream is a failed one)."""
    deframer = EventStreamDeframer()
    async for chunk in chunks:
        for event in deframer.feed(chunk):
            yield event
    left = deframer.finish()
    if left:
        raise ProviderStreamError(corrupt_failure(f"it ended {left} bytes into a message"))
