"""The meters' usage reports: from a whole answer, from a stream, and the `usage` chunk fd2 adds."""

from __future__ import annotations

from typing import Any

import orjson

from fd2.metering import Usage
from fd2.serving.request import Request
from fd2.serving.sse import SseFramer
from fd2.tokens import count_tokens
from fd2_inference.metering import CHAT, OpenAIMeter, UsageReport, stream_report, wants_usage
from fd2_inference.transforms import Defaults, prepare_chat

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 🙂"}]
METER = OpenAIMeter(CHAT, lambda body: prepare_chat(body, Defaults()), None)


def request(body: dict[str, Any]) -> Request:
    raw = orjson.dumps(body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(
        {"method": "POST", "headers": []},
        receive,
        request_id="r",
        project="p",
        module="m",
        environment="development",
        path="/v1/chat/completions",
        content_length=len(raw),
        max_body=1 << 20,
    )


def framer_with(*contents: str, usage: dict[str, int] | None = None) -> SseFramer:
    framer = SseFramer(openai=True, collect_text=True, hold_done=True)
    for content in contents:
        chunk = {
            "id": "cc-1",
            "created": 9,
            "model": "gpt-4o",
            "choices": [{"delta": {"content": content}}],
        }
        framer.feed(b"data: " + orjson.dumps(chunk) + b"\n\n")
    if usage is not None:
        framer.feed(b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n")
    framer.feed(b"data: [DONE]\n\n")
    return framer


def test_wants_usage_only_when_asked_exactly() -> None:
    assert wants_usage({"stream_options": {"include_usage": True}})
    assert not wants_usage({"stream_options": {"include_usage": False}})
    assert not wants_usage({"stream_options": {"include_usage": "yes"}})
    assert not wants_usage({"stream_options": None})
    assert not wants_usage({})


async def test_a_stream_that_asked_for_usage_takes_the_prompt_from_the_estimate() -> None:
    body = {"model": "gpt-4-turbo", "messages": MESSAGES, "stream": True}
    asked = request(body)
    report = await stream_report(
        asked, METER, {**body, "stream_options": {"include_usage": True}}, chat=True
    )
    assert (report.emit, report.count, report.model) == (True, True, "gpt-4-turbo")
    assert asked.cost is not None and report.prompt_tokens == asked.cost.prompt_tokens


async def test_a_stream_nobody_reads_the_usage_of_is_not_estimated() -> None:
    quiet = request({"messages": MESSAGES})
    assert await stream_report(quiet, METER, {"messages": MESSAGES}, chat=True) is None
    assert quiet.cost is None


async def test_the_usage_event_uses_the_streams_identity_and_text() -> None:
    asked = request({"messages": MESSAGES})
    report = UsageReport(asked, emit=True, count=True, prompt_tokens=21, model="gpt-4o")
    framer = framer_with("Hel", "lo", " there")
    event = await report.stream_end(framer, "rid-1")
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    completion = count_tokens("Hello there")
    assert orjson.loads(event[6:]) == {
        "id": "cc-1",
        "object": "chat.completion.chunk",
        "created": 9,
        "model": "gpt-4o",
        "choices": [],
        "usage": {
            "prompt_tokens": 21,
            "completion_tokens": completion,
            "total_tokens": 21 + completion,
        },
    }
    assert asked.usage == Usage(prompt_tokens=21, completion_tokens=completion)
    assert framer.take_held() == b"data: [DONE]\n\n"


async def test_the_upstreams_own_usage_wins_and_nothing_is_added() -> None:
    asked = request({"messages": MESSAGES})
    report = UsageReport(asked, emit=True, count=True, prompt_tokens=21)
    framer = framer_with("Hi", usage={"prompt_tokens": 5, "completion_tokens": 1})
    assert await report.stream_end(framer, "rid") == b""
    assert asked.usage == Usage(prompt_tokens=5, completion_tokens=1)


async def test_an_upstream_error_is_still_charged_but_gets_no_usage_chunk() -> None:
    asked = request({"messages": MESSAGES})
    report = UsageReport(asked, emit=True, count=True, prompt_tokens=21)
    framer = framer_with("Hi")
    framer.feed(b'data: {"error": {"message": "overloaded"}}\n\n')
    assert framer.error is not None
    assert await report.stream_end(framer, "rid") == b""
    assert asked.usage == Usage(prompt_tokens=21, completion_tokens=count_tokens("Hi"))


async def test_a_whole_answers_usage_member() -> None:
    asked = request({"messages": MESSAGES})
    report = UsageReport(asked)
    report.answer(None)
    report.answer(b"null")
    assert asked.usage is None
    report.answer(b'{"prompt_tokens": 3, "completion_tokens": 4}')
    assert asked.usage == Usage(prompt_tokens=3, completion_tokens=4)
    assert asked.cost is None  # a whole answer needs no estimate
