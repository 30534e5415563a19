"""AWS's `application/vnd.amazon.eventstream` framing as the module's Deframer (the seam
`fd2_inference.framing` looks up): bytes in, StreamEvents out.

The binary framing is decoded natively (`fd2._native.EventStreamDecoder`: CRCs, lengths, typed
headers). Here each message becomes a StreamEvent named by its `:event-type` header; a message
whose `:message-type` is `exception` (Bedrock's `throttlingException`, `validationException`, ...)
or `error`, and bytes that fail their CRC, end the stream with ProviderStreamError.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
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
    an unfinished last message (the relay decides what a cut stream means)."""

    __slots__ = ("_decoder",)

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._decoder = EventStreamDecoder(max_message_bytes=max_message_bytes)

    def feed(self, chunk: bytes) -> Sequence[StreamEvent]:
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
            elif kind == "exception":
                name = headers.get(":exception-type")
                raise ProviderStreamError(
                    exception_failure(name if isinstance(name, str) else "", payload)
                )
            elif kind == "error":
                code = headers.get(":error-code")
                message = headers.get(":error-message")
                raise ProviderStreamError(
                    exception_failure(
                        code if isinstance(code, str) else "",
                        b"",
                        message=message if isinstance(message, str) else "",
                    )
                )
            # Other message types (none defined for Bedrock today) carry nothing to relay.
        return events

    def finish(self) -> int:
        return self._decoder.finish()


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
