"""Streaming through fd2: order, [DONE], usage, upstream failures, client disconnects."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from .conftest import Service, StandinStats
from .support import ACME_PROMPT, assert_no_leak, chat_body, raw_request, sse_events, wait_until

USER = {"role": "user", "content": "stream please"}


def _contents(chunks: list[object]) -> list[str]:
    return [
        choice.delta.content
        for chunk in chunks
        for choice in chunk.choices  # type: ignore[attr-defined]
        if choice.delta.content
    ]


def test_every_chunk_arrives_in_order(client: openai.OpenAI) -> None:
    with client.chat.completions.create(model="chunks-40", messages=[USER], stream=True) as stream:
        chunks = list(stream)
    assert _contents(chunks) == [f"{i};" for i in range(1, 41)]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({chunk.id for chunk in chunks}) == 1


def test_chunks_with_gaps_arrive_in_order(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="chunks-10-gap-20", messages=[USER], stream=True
    ) as stream:
        assert _contents(list(stream)) == [f"{i};" for i in range(1, 11)]


def test_stream_is_relayed_as_it_comes(client: openai.OpenAI) -> None:
    """The first chunk reaches the client long before the upstream has finished."""
    started = time.monotonic()
    with client.chat.completions.create(
        model="chunks-20-gap-100", messages=[USER], stream=True
    ) as stream:
        first = next(iter(stream))
        first_at = time.monotonic() - started
        rest = list(stream)
    total = time.monotonic() - started
    assert first.choices[0].delta.role == "assistant"
    assert first_at < 1.0, f"first chunk after {first_at:.2f}s: the stream was buffered"
    assert total >= 1.8
    assert _contents(rest) == [f"{i};" for i in range(1, 21)]


def test_streamed_request_gets_defaults_and_key(client: openai.OpenAI) -> None:
    with client.chat.completions.create(model="chunks-2", messages=[USER], stream=True) as stream:
        first = next(iter(stream))
        list(stream)
    seen = (first.model_extra or {})["standin"]
    assert seen["messages"] == [{"role": "system", "content": ACME_PROMPT}, USER]
    assert seen["authorization"] == "Bearer test-acme-key"
    assert seen["max_tokens"] == 1024


def test_include_usage_yields_the_usage_chunk(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="chunks-5",
        messages=[USER],
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 5
    assert last.usage.total_tokens == last.usage.prompt_tokens + 5
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert _contents(chunks) == [f"{i};" for i in range(1, 6)]


def test_done_ends_the_raw_stream(fd2: Service) -> None:
    response = raw_request(
        fd2.port,
        "POST",
        b"/acme/chat/v1/chat/completions",
        [(b"content-type", b"application/json")],
        chat_body("chunks-3", stream=True),
    )
    assert response.status == 200
    assert response.complete
    assert (response.header("content-type") or "").startswith("text/event-stream")
    events = sse_events(response.body)
    assert events[-1] == b"[DONE]"
    assert events.count(b"[DONE]") == 1
    assert response.body.endswith(b"data: [DONE]\n\n")


def test_broken_upstream_stream_raises_api_error(client: openai.OpenAI) -> None:
    received: list[object] = []
    with (
        pytest.raises(openai.APIError) as caught,
        client.chat.completions.create(
            model="stream-break", messages=[USER], stream=True
        ) as stream,
    ):
        for chunk in stream:
            received.append(chunk)  # noqa: PERF402  # keeps what came before the error
    assert not isinstance(caught.value, openai.APIConnectionError), (
        "fd2 dropped the client connection instead of sending an SSE error event"
    )
    assert caught.value.message
    assert _contents(received) == ["1;", "2;", "3;"]


def test_broken_upstream_stream_ends_with_an_error_event(fd2: Service) -> None:
    response = raw_request(
        fd2.port,
        "POST",
        b"/acme/chat/v1/chat/completions",
        [],
        chat_body("stream-break", stream=True),
    )
    assert response.status == 200
    assert response.complete, "fd2 must end its own response properly"
    assert_no_leak(response.body)
    events = sse_events(response.body)
    assert b"[DONE]" not in events[:-1]
    error_events = [json.loads(e) for e in events if e != b"[DONE]" and b'"error"' in e]
    assert len(error_events) == 1, events
    error = error_events[0]["error"]
    assert error["message"]
    assert error["type"]


def test_upstream_stream_without_done_does_not_hang(client: openai.OpenAI) -> None:
    started = time.monotonic()
    received: list[object] = []
    try:
        with client.chat.completions.create(
            model="no-done", messages=[USER], stream=True, timeout=10
        ) as stream:
            received.extend(stream)
    except openai.APIError as exc:
        assert not isinstance(exc, openai.APITimeoutError)
    assert time.monotonic() - started < 5
    assert _contents(received) == [f"{i};" for i in range(1, 9)]


def test_client_closing_a_stream_cancels_the_upstream(
    client: openai.OpenAI, standin_stats: StandinStats
) -> None:
    standin_stats.settle()
    stream = client.chat.completions.create(model="chunks-200-gap-50", messages=[USER], stream=True)
    with stream:
        iterator = iter(stream)
        for _ in range(4):
            next(iterator)
        assert standin_stats.get()["open_streams"] == 1
    closed_at = time.monotonic()
    stats = wait_until(
        lambda: (s := standin_stats.get())["cancelled"] >= 1 and s["open_streams"] == 0 and s,
        timeout=3.0,
        what="the upstream stream to be cancelled after the client left",
    )
    assert time.monotonic() - closed_at < 3.0
    assert stats["completed"] == 0


def test_client_leaving_a_slow_request_cancels_the_upstream(
    fd2: Service, standin_stats: StandinStats
) -> None:
    standin_stats.settle()
    with (
        httpx.Client(base_url=fd2.url, timeout=0.5) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/acme/chat/v1/chat/completions", content=chat_body("slow-10000"))
    stats = wait_until(
        lambda: (s := standin_stats.get())["cancelled"] >= 1 and s,
        timeout=3.0,
        what="the slow upstream request to be cancelled after the client left",
    )
    assert stats["completed"] == 0


def test_concurrent_streams_do_not_mix(make_client: Callable[..., openai.OpenAI]) -> None:
    sdk = make_client("acme/chat")
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            with sdk.chat.completions.create(
                model=f"chunks-{n}-gap-5", messages=[USER], stream=True
            ) as stream:
                results[n] = _contents(list(stream))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(5, 25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for n, contents in results.items():
        assert contents == [f"{i};" for i in range(1, n + 1)]
    assert len(results) == 20
