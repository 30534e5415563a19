"""fd2._native SSE framer and decoder: split invariance, exact byte relay, WHATWG events, errors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sse_reference import BOM, reference_events

from fd2._native import NativeError, SseDecoder, SseEventTooLarge, SseFramer, SseStateError
from fd2.serving.errors import Fd2Error


def relay(chunks: list[bytes], **kwargs: int) -> tuple[bytes, SseFramer]:
    """Feeds every chunk, checking the byte accounting after each, then finishes."""
    framer = SseFramer(**kwargs)
    out, seen = [], 0
    for chunk in chunks:
        out.append(framer.feed(chunk))
        seen += len(chunk)
        assert sum(map(len, out)) + framer.buffered == seen
    dropped = framer.finish()
    assert framer.buffered == 0
    assert sum(map(len, out)) + dropped == seen
    return b"".join(out), framer


def decode(chunks: list[bytes]) -> tuple[list[tuple[str, str, str]], int]:
    decoder = SseDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events, decoder.finish()


def as_text(events: list[tuple[bytes, bytes, bytes]]) -> list[tuple[str, str, str]]:
    return [tuple(part.decode("utf-8", "replace") for part in event) for event in events]  # type: ignore[misc]


def cut(stream: bytes, positions: list[int]) -> list[bytes]:
    bounds = [0, *sorted(positions), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


TOKENS = st.sampled_from(
    [
        *(b"data:", b"data: ", b"[DONE]", b"event: x", b"id: 1", b"id", b"retry: 9", b":", b" "),
        *(b"x", b"{}", b"\r", b"\n", b"\r\n", b"\n\n", b"\xc3\xa9", b"\xe2\x82\xac", BOM, b"\0"),
    ]
)
STREAMS = st.lists(TOKENS | st.binary(max_size=6), max_size=40).map(b"".join)


@settings(max_examples=400)
@given(stream=STREAMS, data=st.data())
@example(stream=b"data: [DONE]", data=None)
@example(stream=BOM + b"data: 1\r\n\r\ndata: [DONE]\r", data=None)
@example(stream=b"data: \xe2\x82\xac\r\n\r\n", data=None)
def test_any_split_gives_the_events_of_the_unsplit_stream(
    stream: bytes, data: st.DataObject | None
) -> None:
    positions = [] if data is None else data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    chunks = cut(stream, positions)
    whole, one = relay([stream])
    split, many = relay(chunks)
    assert split == whole
    assert (many.events, many.done, many.discarded) == (one.events, one.done, one.discarded)

    expected, relayed = reference_events(stream)
    assert whole == stream[:relayed]  # the original bytes, minus the unterminated tail
    assert decode([stream]) == decode(chunks) == (as_text(expected), len(stream) - relayed)
    assert one.done == any(data == b"[DONE]" for _, data, _ in expected)


@given(stream=STREAMS)
def test_byte_by_byte_matches_one_chunk(stream: bytes) -> None:
    whole, one = relay([stream])
    split, many = relay([stream[i : i + 1] for i in range(len(stream))])
    assert (split, many.events, many.done) == (whole, one.events, one.done)


def test_whatwg_fields() -> None:
    stream = (
        BOM + b"data: a\ndata:b\r\ndata\revent: up\nid: 7\nretry: 1500\n\n"
        b": comment\n\nevent: ignored\n\ndata:\n\nid: x\0y\ndata: \xc3\xa9\nretry: 1x\n\ndata: cut"
    )
    decoder = SseDecoder()
    events = decoder.feed(stream)
    assert events == [("up", "a\nb\n", "7"), ("message", "", "7"), ("message", "é", "7")]
    assert decoder.retry == 1500
    assert decoder.finish() == len(b"data: cut")


def test_typical_openai_stream() -> None:
    events = [b'data: {"id":"c1","choices":[{"delta":{"content":"Hi"}}]}\n\n'] * 3
    stream = b"".join(events) + b"data: [DONE]\n\n"
    framer = SseFramer()
    assert framer.feed(stream[:20]) == b""
    assert framer.buffered == 20
    assert framer.feed(stream[20:]) == stream
    assert (framer.events, framer.done, framer.buffered) == (4, True, 0)
    assert framer.finish() == 0


def test_zero_copy_when_chunk_ends_on_a_boundary() -> None:
    framer = SseFramer()
    chunk = b"data: a\n\ndata: b\r\n\r\n"
    assert framer.feed(chunk) is chunk
    assert framer.feed(b"data: c\n\ndata: d") == b"data: c\n\n"
    rest = b"\n\n"
    out = framer.feed(rest)
    assert out == b"data: d\n\n"
    assert out is not rest  # bytes were held back, so this is a new object
    again = b"data: e\n\n"
    assert framer.feed(again) is again


def test_trailing_cr_is_flushed_and_its_lf_is_not_an_event() -> None:
    framer = SseFramer()
    first = b"data: a\r\n\r"
    assert framer.feed(first) is first
    assert (framer.events, framer.buffered) == (1, 0)
    second = b"\ndata: b\r\n\r\n"
    assert framer.feed(second) is second
    assert framer.events == 2
    assert framer.feed(b"\n") == b"\n"
    assert framer.events == 2


def test_finish_drops_an_unterminated_event() -> None:
    framer = SseFramer()
    assert framer.feed(b"data: 1\n\ndata: [DONE]\n") == b"data: 1\n\n"
    assert framer.finish() == len(b"data: [DONE]\n")
    assert (framer.done, framer.events, framer.discarded) == (False, 1, 13)
    assert framer.finish() == 0


def test_feed_after_finish_raises_state_error() -> None:
    framer = SseFramer()
    framer.finish()
    with pytest.raises(SseStateError, match="after finish"):
        framer.feed(b"data: x\n\n")


def test_oversized_event_raises_and_disables_the_framer() -> None:
    framer = SseFramer(max_event_bytes=16)
    assert framer.feed(b"data: 12345678\n\n") == b"data: 12345678\n\n"  # 16 bytes: fits
    with pytest.raises(SseEventTooLarge, match="max_event_bytes=16"):
        framer.feed(b"data: 12345678901")
    assert framer.buffered == 0
    with pytest.raises(SseStateError):
        framer.feed(b"\n\n")
    with pytest.raises(SseStateError):
        framer.finish()
    with pytest.raises(SseEventTooLarge):
        SseDecoder(max_event_bytes=4).feed(b"data: x\n\n")


def test_exceptions_sit_under_fd2s_error_root() -> None:
    for cls in (SseStateError, SseEventTooLarge):
        assert issubclass(cls, NativeError)
    assert issubclass(NativeError, Fd2Error)
    assert not issubclass(SseStateError, SseEventTooLarge)
    assert NativeError.__module__ == "fd2._native"
    with pytest.raises(Fd2Error) as caught:
        SseFramer(max_event_bytes=1).feed(b"data: x")
    assert caught.value.message.startswith("SSE event exceeds")


def test_argument_checking() -> None:
    with pytest.raises(TypeError):
        SseFramer(1024)  # type: ignore[misc]
    with pytest.raises(TypeError):
        SseFramer().feed("data: x\n\n")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        SseFramer().done = True  # type: ignore[misc]
