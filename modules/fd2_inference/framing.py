"""Cutting a provider's stream into events: SSE here, AWS's event stream behind a seam.

The translated stream relay feeds each chunk it reads to a `Deframer` (fd2_inference.providers.
base) and hands the events to the provider's StreamTranslator. SSE uses the native WHATWG
decoder (fd2.serving.sse). AWS's `application/vnd.amazon.eventstream` framing is prov-bedrock's:
`fd2_inference.providers.eventstream.frame_eventstream`, looked up when a stream needs it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Final, cast

from fd2.serving.errors import ConfigError
from fd2.serving.sse import SseDecoder
from fd2_inference.providers.base import Deframer, FrameEventstream, Framing, StreamEvent

EVENTSTREAM_HOOK: Final = "fd2_inference.providers.eventstream"
CONTENT_TYPES: Final[dict[str, str]] = {
    "sse": "text/event-stream",
    "eventstream": "application/vnd.amazon.eventstream",
}
"""The content type a provider's stream answer carries, by framing."""


class SseDeframer:
    """Server-sent events as StreamEvents: `event:` as the name (None for the default
    "message"), `data:` lines joined as the payload."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = SseDecoder()

    def feed(self, chunk: bytes) -> Sequence[StreamEvent]:
        return [
            StreamEvent(name if name != "message" else None, data.encode())
            for name, data, _id in self._decoder.feed(chunk)
        ]

    def finish(self) -> int:
        return self._decoder.finish()


def frame_eventstream() -> Deframer:
    """A Deframer for AWS's event stream (the hook prov-bedrock supplies)."""
    try:
        hook = importlib.import_module(EVENTSTREAM_HOOK)
    except ModuleNotFoundError as exc:
        if exc.name != EVENTSTREAM_HOOK:
            raise
        raise ConfigError("AWS event stream framing is not available in this build") from None
    return cast(FrameEventstream, hook.frame_eventstream)()


def deframer_for(framing: Framing) -> Deframer:
    if framing == "eventstream":
        return frame_eventstream()
    return SseDeframer()


def is_stream_answer(framing: Framing, status: int, content_type: str | None) -> bool:
    """Whether an answer is the provider's stream (else an error, or a plain answer)."""
    if status != 200 or content_type is None:
        return False
    return content_type.partition(";")[0].strip().lower() == CONTENT_TYPES[framing]
