"""Every stream ends in a way its client can tell, and no answer carries the key fd2 sent.

Against the in-process upstream of test_module.py, and a raw socket upstream for answers without
chunked framing (aiohttp's server always frames them): a cut, a stream that is not SSE, the
shutdown deadline, error answers and error events that quote the credentials.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from fd2.control.secrets import Secret
from fd2.serving import draining
from fd2.serving.errors import ServiceUnavailable

from .test_module import (
    CHAT,
    EVENTS,
    FINISH,
    STREAM_BODY,
    Exchange,
    FakeUpstream,
    Make,
    Pause,
    answer,
    assert_ended,
    make,
    session,
    streaming,
    upstream,
)

__all__ = ["make", "session", "upstream"]  # fixtures used here

KEY = "sk-live-0123456789"
WITH_KEY = {"config": {"api_key": Secret(KEY)}}


def last_error(exchange: Exchange) -> dict[str, Any]:
    events = [e for e in exchange.body.split(b"\n\n") if e]
    error = orjson.loads(events[-1].removeprefix(b"data: "))["error"]
    assert set(error) == {"message", "type", "code", "param"}
    return dict(error)


# --- L: bytes that are not an event stream are refused, not relayed


@pytest.mark.parametrize(
    "body",
    [
        b"<html>\n<body>502 Bad Gateway</body>\n</html>\n\n",
        b"<html><body>no line end at all</body></html>",
        b'{"error": {"message": "not an event", "type": "x"}}\n\n',
        b"data: plain text, not JSON\n\n",
        b'data: {"choices": []}\n\n<html>\n\n',
    ],
    ids=["html", "no-line-end", "bare-json", "text-data", "events-then-garbage"],
)
async def test_an_answer_that_is_not_an_event_stream_is_refused(make: Make, body: bytes) -> None:
    exchange = await make(streaming(body)).run("/v1/chat/completions", STREAM_BODY)
    assert exchange.status == 200
    assert b"html" not in exchange.body
    assert b"not an event" not in exchange.body
    assert last_error(exchange)["code"] == "upstream_not_event_stream"
    assert b"data: [DONE]" not in exchange.body
    assert_ended(exchange)


async def test_keep_alives_and_a_bom_before_the_first_event_are_relayed(make: Make) -> None:
    start = b"\xef\xbb\xbf: keep-alive\n\nretry: 100\n\n"
    exchange = make(streaming(start, EVENTS[0], FINISH, EVENTS[-1]))
    await exchange.run("/v1/chat/completions", {**STREAM_BODY, "stream_options": None})
    assert exchange.body == start + EVENTS[0] + FINISH + EVENTS[-1]


# --- L: a stream that ends before its answer is complete ends with an error event


async def test_a_clean_end_without_finish_reason_or_done_is_an_error_event(make: Make) -> None:
    exchange = await make(streaming(EVENTS[0], EVENTS[1])).run("/v1/chat/completions", STREAM_BODY)
    assert exchange.body.startswith(EVENTS[0] + EVENTS[1])
    assert last_error(exchange)["code"] == "upstream_stream_incomplete"
    assert b"data: [DONE]" not in exchange.body
    assert b'"usage"' not in exchange.body  # no usage is made up for a cut answer
    assert_ended(exchange)


async def test_an_empty_event_stream_is_an_error_event(make: Make) -> None:
    exchange = await make(streaming()).run("/v1/chat/completions", STREAM_BODY)
    assert last_error(exchange)["code"] == "upstream_stream_incomplete"
    assert_ended(exchange)


class RawUpstream:
    """Answers every connection with `head` + `chunks` without any framing, then ends the
    connection with a FIN or, with `reset`, an RST (as a crashed or reset peer does)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.reset = False
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
        for chunk in self.chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)
        sock = writer.get_extra_info("socket")
        if self.reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[RawUpstream]:
    server = RawUpstream()
    await server.start()
    yield server
    await server.close()


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
async def test_an_unframed_stream_cut_mid_answer_ends_with_an_error_event(
    make: Make, raw: RawUpstream, reset: bool
) -> None:
    raw.chunks, raw.reset = [EVENTS[0], EVENTS[1]], reset
    exchange = make(answer(500), config={"endpoint_url": raw.url})
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.body.startswith(EVENTS[0] + EVENTS[1])
    assert last_error(exchange)["code"] == "upstream_stream_incomplete"
    assert_ended(exchange)


async def test_an_unframed_stream_that_finished_ends_with_done(
    make: Make, raw: RawUpstream
) -> None:
    raw.chunks = [EVENTS[0], FINISH]
    exchange = make(answer(500), config={"endpoint_url": raw.url})
    await exchange.run("/v1/chat/completions", {**STREAM_BODY, "stream_options": None})
    assert exchange.body == EVENTS[0] + FINISH + b"data: [DONE]\n\n"
    assert_ended(exchange)


# --- G: the key fd2 sent upstream never reaches the client


async def test_an_error_answer_quoting_the_key_is_relayed_without_it(make: Make) -> None:
    quoted = orjson.dumps(
        {"error": {"message": f"bad key: Bearer {KEY}", "type": "auth", "code": "invalid_key"}}
    )
    exchange = make(answer(401, quoted, **{"content-type": "application/json"}), **WITH_KEY)
    await exchange.run(
        "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert exchange.status == 401
    assert KEY.encode() not in exchange.body
    assert orjson.loads(exchange.body)["error"]["message"] == "bad key: Bearer ***"
    # The stream request answered with an error (no stream) is scrubbed the same way.
    exchange = make(answer(401, quoted, **{"content-type": "application/json"}), **WITH_KEY)
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.status == 401
    assert KEY.encode() not in exchange.body


@pytest.mark.parametrize(
    "event",
    [
        b'data: {"error": {"message": "bad key: Bearer ' + KEY.encode() + b'"}}\n\n',
        b'event: error\ndata: {"error": {"message": "\\u0073k-live-0123456789"}}\n\n',
    ],
    ids=["plain", "escaped"],
)
async def test_an_error_event_quoting_the_key_is_relayed_without_it(
    make: Make, event: bytes
) -> None:
    exchange = make(streaming(EVENTS[0], event, EVENTS[1]), **WITH_KEY)
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.body.startswith(EVENTS[0])
    assert KEY.encode() not in exchange.body
    assert b"k-live" not in exchange.body
    assert b"***" in exchange.body
    assert exchange.body.endswith(EVENTS[1])  # the upstream's error event was the end it chose
    assert_ended(exchange)


# --- M: at the shutdown deadline a stream ends with an error event, a call with a 503


@pytest.fixture
def drain(monkeypatch: pytest.MonkeyPatch) -> Iterator[draining.Drain]:
    fresh = draining.Drain()
    monkeypatch.setattr(draining, "_DRAIN", fresh)
    yield fresh


async def cut_when_requested(upstream: FakeUpstream, drain: draining.Drain) -> None:
    await upstream.requested.wait()
    await asyncio.sleep(0.2)
    drain.cut()


async def test_the_shutdown_deadline_ends_a_stream_with_an_error_event(
    make: Make, upstream: FakeUpstream, drain: draining.Drain
) -> None:
    exchange = make(streaming(EVENTS[0], Pause(10), EVENTS[1]))
    cutter = asyncio.create_task(cut_when_requested(upstream, drain))
    await asyncio.wait_for(exchange.run("/v1/chat/completions", STREAM_BODY), 5)
    await cutter
    assert exchange.body.startswith(EVENTS[0])
    assert last_error(exchange)["code"] == "gateway_shutting_down"
    assert_ended(exchange)
    assert drain.held == 0


async def test_the_shutdown_deadline_answers_a_waiting_call_with_503(
    make: Make, upstream: FakeUpstream, drain: draining.Drain
) -> None:
    async def slow(request: Any) -> Any:
        await asyncio.sleep(10)

    exchange = make(slow)
    cutter = asyncio.create_task(cut_when_requested(upstream, drain))
    with pytest.raises(ServiceUnavailable) as caught:
        await asyncio.wait_for(exchange.run("/v1/chat/completions", CHAT), 5)
    await cutter
    assert caught.value.code == "gateway_shutting_down"
    assert exchange.sent == []
