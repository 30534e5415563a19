"""Tests for fd2._native.SseFramer: split invariance, exact byte relay, zero copy, errors."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fd2._native import NativeError, SseEventTooLarge, SseFramer, SseStateError

BOM = b"\xef\xbb\xbf"
LINE_END = re.compile(rb"\r\n|\r|\n")
# What finish() may append to close a truncated tail (LF, CR or CRLF style).
CLOSERS = {b"\n", b"\n\n", b"\r", b"\r\r", b"\r\n", b"\r\n\r\n"}


def reference(stream: bytes) -> tuple[int, bool, bool]:
    """Independent one-shot reading of a whole stream (WHATWG line and field rules).

    Returns (events, done, needs_closing): the number of non-empty events (a tail
    cut inside an event counts, as finish() closes it), whether one had data
    exactly "[DONE]", and whether the stream ends inside an event.
    """
    *lines, tail = LINE_END.split(stream.removeprefix(BOM))
    events, done, content, data = 0, False, False, list[bytes]()
    for line in [*lines, tail] if tail else lines:
        if not line:
            if content:
                events += 1
                done |= b"\n".join(data) == b"[DONE]"
            content, data = False, []
            continue
        content = True
        if line.startswith(b":"):
            continue
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
    needs_closing = content  # the last line (the unterminated tail, if any) was not blank
    if needs_closing:
        events += 1
        done |= b"\n".join(data) == b"[DONE]"
    return events, done, needs_closing


def relay(chunks: list[bytes], **kwargs: int) -> tuple[bytes, SseFramer]:
    """Feeds every chunk, checking the byte accounting after each, then finishes."""
    framer = SseFramer(**kwargs)
    out, seen = [], 0
    for chunk in chunks:
        out.append(framer.feed(chunk))
        seen += len(chunk)
        assert sum(map(len, out)) + framer.buffered == seen
    out.append(framer.finish())
    assert framer.buffered == 0
    return b"".join(out), framer


def cut(stream: bytes, positions: list[int]) -> list[bytes]:
    bounds = [0, *sorted(positions), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


TOKENS = st.sampled_from(
    [
        *(b"data:", b"data: ", b"[DONE]", b"event: x", b"id: 1", b":", b" ", b"x", b"{}"),
        *(b"\r", b"\n", b"\r\n", b"\n\n", b"\xc3\xa9", b"\xe2\x82\xac", BOM),
    ]
)
STREAMS = st.lists(TOKENS | st.binary(max_size=6), max_size=40).map(b"".join)


@settings(max_examples=400)
@given(stream=STREAMS, data=st.data())
@example(stream=b"data: [DONE]", data=None)
@example(stream=BOM + b"data: 1\r\n\r\ndata: [DONE]\r", data=None)
def test_any_split_relays_the_stream_like_one_chunk(
    stream: bytes, data: st.DataObject | None
) -> None:
    positions = [] if data is None else data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    whole, one = relay([stream])
    split, many = relay(cut(stream, positions))
    assert split == whole
    assert (many.events, many.done) == (one.events, one.done)

    events, done, needs_closing = reference(stream)
    assert (one.events, one.done) == (events, done)
    assert whole.startswith(stream)
    added = whole[len(stream) :]
    if needs_closing:
        assert added in CLOSERS
        assert reference(whole) == (events, done, False)
    else:
        assert added == b""


@given(stream=STREAMS)
def test_byte_by_byte_matches_one_chunk(stream: bytes) -> None:
    whole, one = relay([stream])
    split, many = relay([stream[i : i + 1] for i in range(len(stream))])
    assert (split, many.events, many.done) == (whole, one.events, one.done)


def test_typical_openai_stream() -> None:
    events = [b'data: {"id":"c1","choices":[{"delta":{"content":"Hi"}}]}\n\n'] * 3
    stream = b"".join(events) + b"data: [DONE]\n\n"
    framer = SseFramer()
    assert framer.feed(stream[:20]) == b""
    assert framer.buffered == 20
    assert framer.feed(stream[20:]) == stream
    assert (framer.events, framer.done, framer.buffered) == (4, True, 0)
    assert framer.finish() == b""


def test_zero_copy_when_chunk_ends_on_a_boundary() -> None:
    framer = SseFramer()
    chunk = b"data: a\n\ndata: b\r\n\r\n"
    assert framer.feed(chunk) is chunk
    partial = framer.feed(b"data: c\n\ndata: d")
    assert partial == b"data: c\n\n"
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


def test_finish_closes_a_tail_without_blank_line() -> None:
    framer = SseFramer()
    assert framer.feed(b"data: 1\n\ndata: [DONE]\n") == b"data: 1\n\n"
    assert not framer.done
    assert framer.finish() == b"data: [DONE]\n\n"
    assert (framer.done, framer.events) == (True, 2)
    assert framer.finish() == b""


def test_bom_is_relayed_but_not_parsed() -> None:
    stream = BOM + b"data:[DONE]\n\n"
    out, framer = relay([stream[:2], stream[2:]])
    assert out == stream
    assert framer.done


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


def test_event_size_limit_counts_the_whole_event() -> None:
    event = b"data: 12345678\n\n"  # 16 bytes
    assert SseFramer(max_event_bytes=16).feed(event) is event
    with pytest.raises(SseEventTooLarge):
        SseFramer(max_event_bytes=15).feed(event)


def test_exception_hierarchy() -> None:
    assert issubclass(NativeError, Exception)
    assert issubclass(SseStateError, NativeError)
    assert issubclass(SseEventTooLarge, NativeError)
    assert not issubclass(SseStateError, SseEventTooLarge)
    assert NativeError.__module__ == "fd2._native"


def test_argument_checking() -> None:
    with pytest.raises(TypeError):
        SseFramer(1024)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        SseFramer().feed("data: x\n\n")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        SseFramer().done = True  # type: ignore[misc]
