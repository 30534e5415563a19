"""fd2._native.SseFramer(openai=True): usage, finish reason, model, errors, text, held [DONE]."""

from __future__ import annotations

import itertools

import orjson
from hypothesis import given
from hypothesis import strategies as st

from fd2._native import SseFramer


def event(**fields: object) -> bytes:
    return b"data: " + orjson.dumps(fields) + b"\n\n"


def chunk(content: str | None = None, finish: str | None = None, **extra: object) -> bytes:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return event(id="c9", created=7, model="gpt-4o-mini", choices=[choice], **extra)


USAGE = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
STREAM = [
    chunk("", usage=None),
    chunk("Hel", usage=None),
    chunk('lo "x"\n', usage=None),
    chunk(None, "length", usage=None),
    event(id="c9", model="gpt-4o-mini", choices=[], usage=USAGE),
    b"data: [DONE]\n\n",
]


def test_reads_the_facts_and_parses_few_events() -> None:
    framer = SseFramer(openai=True)
    for piece in STREAM:
        assert framer.feed(piece) is piece
    assert framer.model == "gpt-4o-mini"
    assert (framer.response_id, framer.created) == ("c9", 7)
    assert framer.finish_reason == "length"
    assert framer.usage == (11, 2, 13)
    assert framer.error is None
    assert framer.done
    assert framer.text == ""
    assert framer.parsed == 3  # first (model), finish_reason, usage: not the content chunks


def test_collects_text_and_holds_done() -> None:
    framer = SseFramer(collect_text=True, hold_done=True)
    out = b"".join(framer.feed(piece) for piece in STREAM)
    assert out == b"".join(STREAM[:-1])
    assert framer.text == 'Hello "x"\n'
    assert framer.take_held() == b"data: [DONE]\n\n"
    assert framer.take_held() == b""


def test_spots_in_stream_errors() -> None:
    framer = SseFramer(openai=True)
    framer.feed(event(error={"message": "overloaded", "type": "server_error"}))
    assert framer.error is not None
    assert orjson.loads(framer.error) == {"message": "overloaded", "type": "server_error"}
    other = SseFramer(openai=True)
    other.feed(b"event: error\ndata: upstream gave up\n\n")
    assert other.error == "upstream gave up"


def test_without_openai_nothing_is_parsed() -> None:
    framer = SseFramer()
    for piece in STREAM:
        framer.feed(piece)
    assert (framer.parsed, framer.usage, framer.model) == (0, None, None)


@given(cuts=st.lists(st.integers(0, sum(map(len, STREAM))), max_size=10))
def test_facts_do_not_depend_on_chunking(cuts: list[int]) -> None:
    stream = b"".join(STREAM)
    bounds = [0, *sorted(cuts), len(stream)]
    framer = SseFramer(collect_text=True, hold_done=True)
    out = b"".join(framer.feed(stream[a:b]) for a, b in itertools.pairwise(bounds))
    assert out + framer.take_held() == stream
    assert (framer.usage, framer.finish_reason, framer.text) == (
        (11, 2, 13),
        "length",
        'Hello "x"\n',
    )


def test_odd_events_give_the_facts_a_whole_json_reading_gives() -> None:
    """The members read without building the whole event, and the events that reading does
    not fit (a member twice: the last one counts; not an object), against what a JSON parser
    says of the same events."""
    framer = SseFramer(openai=True)
    first = (
        b'data: {"id": "c\\u00e9", "model": "gpt-\\"4\\"", "created": 7.5, "error": null, '
        b'"choices": [{"finish_reason": null}, 3, "x"]}\n\n'
    )
    framer.feed(first)
    assert (framer.model, framer.response_id, framer.created) == ('gpt-"4"', "c\u00e9", None)
    assert (framer.finish_reason, framer.error, framer.usage) == (None, None, None)
    framer.feed(
        b'data: {"choices": [{"finish_reason": "length", "finish_reason": "stop"}], '
        b'"usage": {"prompt_tokens": 3, "completion_tokens": 1.5, "total_tokens": 4}}\n\n'
    )
    assert framer.finish_reason == "stop" and framer.usage == (3, 0, 4)
    framer.feed(b'data: {"usage": {"prompt_tokens": 1}, "usage": {"prompt_tokens": 2}}\n\n')
    assert framer.usage == (2, 0, 0)
    framer.feed(b'data: {"error": {"message": "m", "code": 5}, "choices": "none"}\n\n')
    assert orjson.loads(framer.error or "") == {"message": "m", "code": 5}
    assert framer.parsed == 4
