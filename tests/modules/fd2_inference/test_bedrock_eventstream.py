"""The AWS event stream seam: fd2._native.EventStreamDecoder under random splits (hypothesis),
typed headers, corrupt bytes, and frame_eventstream's events and failures."""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd2._native import EventStreamDecoder, EventStreamError, NativeError
from fd2_inference.providers.base import ProviderStreamError, StreamEvent
from fd2_inference.providers.eventstream import (
    EventStreamCorrupt,
    events_of,
    frame_eventstream,
)

from .bedrock_frames import event, exception, message

STREAM = [
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"delta": {"text": "Où est "}, "contentBlockIndex": 0}),
    message({}, b""),
    event("contentBlockDelta", {"delta": {"text": "Paris?"}, "contentBlockIndex": 0}),
    message({":event-type": "big", ":message-type": "event"}, b"x" * 70_000),
    event("messageStop", {"stopReason": "end_turn"}),
]
WHOLE = b"".join(STREAM)


def _decode_all(chunks: list[bytes]) -> list[tuple[dict[str, object], bytes]]:
    decoder = EventStreamDecoder()
    out = [item for chunk in chunks for item in decoder.feed(chunk)]
    assert decoder.finish() == 0
    return out


EXPECTED = _decode_all([WHOLE])


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(WHOLE)), max_size=40))
def test_any_split_gives_the_same_messages(cuts: list[int]) -> None:
    assert _decode_all(_split(WHOLE, cuts)) == EXPECTED


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=len(WHOLE)), max_size=10),
    st.integers(min_value=0, max_value=len(WHOLE) - 1),
    st.integers(min_value=1, max_value=255),
)
def test_any_flipped_byte_is_caught_whatever_the_split(cuts: list[int], at: int, flip: int) -> None:
    corrupt = bytearray(WHOLE)
    corrupt[at] ^= flip
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError):
        for chunk in _split(bytes(corrupt), cuts):
            decoder.feed(chunk)
        # A flip inside a length can make the stream look unfinished rather than wrong.
        if decoder.finish():
            raise EventStreamError("unfinished")


def test_typed_headers_come_out_as_python_values() -> None:
    when = datetime.datetime(2026, 11, 29, 19, 0, 1, 234000, tzinfo=datetime.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = {
        "t": True,
        "f": False,
        "byte": ("byte", -3),
        "short": ("short", 1234),
        "int": 70000,
        "long": ("long", -(2**40)),
        "bytes": b"\x00\xff",
        "string": "héllo",
        "when": when,
        "id": ident,
    }
    [(decoded, payload)] = EventStreamDecoder().feed(message(headers, b"{}"))
    assert payload == b"{}"
    assert decoded == {
        "t": True,
        "f": False,
        "byte": -3,
        "short": 1234,
        "int": 70000,
        "long": -(2**40),
        "bytes": b"\x00\xff",
        "string": "héllo",
        "when": when,
        "id": ident,
    }


def test_decoder_counts_and_limits() -> None:
    decoder = EventStreamDecoder(max_message_bytes=1024)
    assert decoder.max_message_bytes == 1024
    assert decoder.feed(STREAM[0][:20]) == []
    assert decoder.buffered == 20
    decoder.feed(STREAM[0][20:])
    assert (decoder.messages, decoder.buffered) == (1, 0)
    with pytest.raises(EventStreamError, match="max_message_bytes=1024") as caught:
        decoder.feed(STREAM[4][:12])  # the prelude alone says it is too large
    assert isinstance(caught.value, NativeError)
    with pytest.raises(EventStreamError, match="failed earlier"):
        decoder.feed(STREAM[0])


def test_good_messages_before_a_bad_one_come_first() -> None:
    corrupt = bytearray(STREAM[1])
    corrupt[-1] ^= 0x01
    for last_call in ("feed", "finish"):
        decoder = EventStreamDecoder()
        got = decoder.feed(STREAM[0] + bytes(corrupt))
        assert [headers[":event-type"] for headers, _ in got] == ["messageStart"]
        with pytest.raises(EventStreamError, match="message CRC mismatch"):
            decoder.feed(STREAM[2]) if last_call == "feed" else decoder.finish()
        with pytest.raises(EventStreamError, match="failed earlier"):
            decoder.feed(STREAM[2])


def test_events_before_an_exception_are_relayed_first() -> None:
    for last_call in ("feed", "finish"):
        deframer = frame_eventstream()
        events = deframer.feed(STREAM[0] + STREAM[1] + exception("throttlingException", "slow"))
        assert [e.name for e in events] == ["messageStart", "contentBlockDelta"]
        with pytest.raises(ProviderStreamError) as caught:
            deframer.feed(STREAM[3]) if last_call == "feed" else deframer.finish()
        assert caught.value.failure.status == 429
    deframer = frame_eventstream()
    corrupt = bytearray(STREAM[1])
    corrupt[-1] ^= 0x01
    assert len(deframer.feed(STREAM[0] + bytes(corrupt))) == 1
    with pytest.raises(EventStreamCorrupt):
        deframer.finish()


def test_frame_eventstream_names_events_by_event_type() -> None:
    deframer = frame_eventstream()
    events = [
        e for chunk in _split(WHOLE, list(range(0, len(WHOLE), 7))) for e in deframer.feed(chunk)
    ]
    assert deframer.finish() == 0
    assert [e.name for e in events] == [
        "messageStart",
        "contentBlockDelta",
        None,
        "contentBlockDelta",
        "big",
        "messageStop",
    ]
    assert events[1] == StreamEvent(
        "contentBlockDelta",
        b'{"delta":{"text":"O\xc3\xb9 est "},"contentBlockIndex":0}',
    )


def test_a_crc_mismatch_is_a_provider_stream_error() -> None:
    corrupt = bytearray(STREAM[1])
    corrupt[-1] ^= 0x10
    deframer = frame_eventstream()
    with pytest.raises(EventStreamCorrupt) as caught:
        deframer.feed(bytes(corrupt))
    failure = caught.value.failure
    assert isinstance(caught.value, ProviderStreamError)
    assert isinstance(caught.value, ValueError)
    assert (failure.status, failure.type) == (502, "upstream_error")
    assert "message CRC mismatch" in failure.message


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("throttlingException", 429, "rate_limit_error"),
        ("validationException", 400, "invalid_request_error"),
        ("modelStreamErrorException", 502, "upstream_error"),
        ("serviceUnavailableException", 503, "server_error"),
        ("internalServerException", 502, "upstream_error"),
        ("somethingNewException", 502, "upstream_error"),
    ],
)
def test_exception_messages_end_the_stream(kind: str, status: int, error_type: str) -> None:
    deframer = frame_eventstream()
    assert len(deframer.feed(STREAM[0])) == 1
    with pytest.raises(ProviderStreamError) as caught:
        deframer.feed(exception(kind, "Too many tokens, please wait."))
    failure = caught.value.failure
    assert (failure.status, failure.type) == (status, error_type)
    assert failure.message == "Too many tokens, please wait."


def test_error_messages_end_the_stream() -> None:
    error = message(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"},
        b"",
    )
    with pytest.raises(ProviderStreamError) as caught:
        frame_eventstream().feed(error)
    assert caught.value.failure.status == 502
    assert caught.value.failure.message == "boom"


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for piece in _split(data, list(range(0, len(data), 5))):
        yield piece


async def test_events_of_a_whole_stream_and_of_a_cut_one() -> None:
    whole = [e.name async for e in events_of(_pieces(WHOLE))]
    assert whole[-1] == "messageStop"
    cut = WHOLE[: len(WHOLE) - len(STREAM[-1]) + 10]  # 10 bytes into the last message
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderStreamError, match="ended 10 bytes into a message"):
        async for e in events_of(_pieces(cut)):
            seen.append(e)  # noqa: PERF401  (the events before the error are the point)
    assert seen[-1].name == "big"
