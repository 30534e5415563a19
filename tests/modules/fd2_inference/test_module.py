"""The module's handlers against a real in-process HTTP upstream and a recording `send`.

The upstream is an aiohttp.web application on 127.0.0.1 (an ephemeral port) whose handler each
test chooses; the module talks to it through a real pooled aiohttp session, as it does under the
gateway. Granian and the official SDK are exercised by the end-to-end suite; this checks what each
handler sends upstream and answers, error mapping, failover, streaming and disconnects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, NamedTuple

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fd2.control.secrets import Secret
from fd2.metering import Cost, Usage
from fd2.module import ModuleContext, Timeouts, UpstreamEndpoints
from fd2.serving.errors import BadRequest, ConfigError, UpstreamError, UpstreamTimeout
from fd2.serving.request import Request
from fd2.serving.sse import SseFramer
from fd2.tokens import count_tokens
from fd2_inference import InferenceModule
from fd2_inference.answers import settle
from fd2_inference.metering import count_chat
from fd2_inference.upstream import read_answer

UpstreamHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CHAT_OK = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'
USER = {"role": "user", "content": "hi"}
CHAT = {"model": "m", "messages": [USER]}


class Seen(NamedTuple):
    """One request as the upstream received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    client_port: int


class FakeUpstream:
    """An HTTP server on loopback that records each request and answers it with `handler`."""

    def __init__(self) -> None:
        self.handler: UpstreamHandler = answer(200)
        self.seen: list[Seen] = []
        self.requested = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # TestServer cancels a handler when its client goes away, as production servers do.
        self._server = TestServer(app, host="127.0.0.1")

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        await self._server.close()

    def url(self, path: str) -> str:
        return str(self._server.make_url(path))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(request.method, request.path, request.headers, body, peer[1] if peer else 0)
        )
        self.requested.set()
        return await self.handler(request)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.close()


def gateway_session(limit: int = 16) -> aiohttp.ClientSession:
    """A pooled session built as the core builds its shared one."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=30),
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with gateway_session() as shared:
        yield shared


class Exchange:
    """One request through a freshly set-up module, recording both sides."""

    def __init__(
        self,
        upstream: FakeUpstream,
        session: aiohttp.ClientSession,
        *,
        config: Mapping[str, Any] | None = None,
        references: Mapping[str, Secret | None] | None = None,
        endpoints: UpstreamEndpoints | None = None,
    ) -> None:
        self.upstream = upstream
        self.session = session
        config = {"endpoint_url": upstream.url("/v1/chat/completions"), **(config or {})}
        # As the core does: a config's `timeouts` become the context's time limits.
        limits = {"connect_s": 1.0, "read_s": 5.0, "total_s": 5.0, **config.pop("timeouts", {})}
        self.timeouts = Timeouts(**limits)
        self.config = config
        self.references = references or {}
        self.endpoints = endpoints
        self.sent: list[dict[str, Any]] = []
        self.disconnect = asyncio.Event()

    @property
    def seen(self) -> list[Seen]:
        return self.upstream.seen

    def context(self) -> ModuleContext:
        return ModuleContext(
            project="acme",
            module="chat",
            environment="development",
            module_type="inference_endpoint",
            config=self.config,
            references=self.references,
            endpoints=self.endpoints,
            timeouts=self.timeouts,
            http=self.session,
            logger=logging.getLogger("fd2.module.test"),
        )

    async def run(
        self,
        path: str,
        body: Any = None,
        method: str = "POST",
        on_send: Callable[[dict[str, Any]], None] | None = None,
        before: Callable[[Request], None] | None = None,
    ) -> Exchange:
        raw = body if isinstance(body, bytes) else b"" if body is None else orjson.dumps(body)
        module = InferenceModule()
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await self.disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            if on_send is not None:
                on_send(message)
            self.sent.append(message)

        scope = {
            "type": "http",
            "method": method,
            "path": f"/acme/chat{path}",
            "headers": [(b"authorization", b"Bearer client-token"), (b"cookie", b"c=1")],
        }
        request = Request(
            scope,
            receive,
            request_id="req-123",
            project="acme",
            module="chat",
            environment="development",
            path=path,
            content_length=len(raw),
            max_body=1 << 20,
        )
        self.request = request
        if before is not None:  # what the route's steps would have done (e.g. metered)
            before(request)
        await module.setup(self.context())
        self.module = module
        await module.endpoints()[path][method](request, send)
        return self

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


Make = Callable[..., Exchange]


@pytest.fixture
def make(upstream: FakeUpstream, session: aiohttp.ClientSession) -> Make:
    """`make(handler, **options)`: an Exchange with the upstream answering through `handler`."""

    def factory(handler: UpstreamHandler, **options: Any) -> Exchange:
        upstream.handler = handler
        return Exchange(upstream, session, **options)

    return factory


def answer(status: int, content: bytes = CHAT_OK, **headers: str) -> UpstreamHandler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=content, headers=headers)

    return handler


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unresponsive() -> Iterator[str]:
    """A base URL whose connections never complete: a listener with a full accept queue."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}/v1"
    for filler in fillers:
        filler.close()
    listener.close()


# --- set-up -----------------------------------------------------------------------------------


async def test_setup_needs_an_upstream(make: Make) -> None:
    exchange = make(answer(200), config={"endpoint_url": None})
    with pytest.raises(ConfigError):
        await exchange.run("/v1/models", method="GET")


async def test_primary_endpoint_and_reference_key_are_used(
    make: Make, upstream: FakeUpstream
) -> None:
    exchange = make(
        answer(200, b'{"object":"list","data":[]}'),
        endpoints=UpstreamEndpoints(primary=upstream.url("/primary/v1")),
        references={"api_key": Secret("ref-key-1", "env:X")},
    )
    await exchange.run("/v1/models", method="GET")
    sent = exchange.seen[0]
    assert sent.path == "/primary/v1/models"
    assert sent.method == "GET"
    assert sent.headers["authorization"] == "Bearer ref-key-1"
    assert sent.body == b""
    assert "content-type" not in sent.headers
    assert exchange.status == 200
    assert exchange.body == b'{"object":"list","data":[]}'


async def test_no_key_means_no_authorization_header(make: Make) -> None:
    exchange = await make(answer(200)).run("/v1/chat/completions", CHAT)
    assert "authorization" not in exchange.seen[0].headers
    assert "cookie" not in exchange.seen[0].headers


# --- non-streaming ----------------------------------------------------------------------------


async def test_chat_forwards_original_bytes_and_relays_the_answer(make: Make) -> None:
    original = b'{"model": "m",   "messages": [{"role": "user", "content": "hi"}]}'
    exchange = make(
        answer(200, CHAT_OK, **{"x-ratelimit-remaining-tokens": "9", "openai-processing-ms": "7"}),
        config={"api_key": Secret("sk-upstream-1")},
    )
    await exchange.run("/v1/chat/completions", original)
    sent = exchange.seen[0]
    assert sent.method == "POST"
    assert sent.path == "/v1/chat/completions"
    assert sent.body == original
    assert sent.headers["authorization"] == "Bearer sk-upstream-1"
    assert sent.headers["x-request-id"] == "req-123"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert exchange.status == 200
    assert exchange.body == CHAT_OK
    assert exchange.headers[b"content-type"] == b"application/json"
    assert exchange.headers[b"x-ratelimit-remaining-tokens"] == b"9"
    assert exchange.headers[b"openai-processing-ms"] == b"7"


async def test_manifest_defaults_are_sent_upstream(make: Make) -> None:
    exchange = make(
        answer(200),
        config={"model_name": "gpt-4o-mini", "system_prompt": "Be nice.", "max_tokens": 64},
    )
    await exchange.run("/v1/chat/completions", {"messages": [USER], "temperature": 1})
    assert orjson.loads(exchange.seen[0].body) == {
        "messages": [{"role": "system", "content": "Be nice."}, USER],
        "temperature": 1,
        "model": "gpt-4o-mini",
        "max_tokens": 64,
    }


@pytest.mark.parametrize(
    ("path", "body", "upstream_path"),
    [
        ("/v1/completions", {"model": "m", "prompt": "x"}, "/v1/completions"),
        ("/v1/embeddings", {"model": "e", "input": ["a"]}, "/v1/embeddings"),
    ],
)
async def test_other_endpoints_are_proxied(
    make: Make, path: str, body: dict[str, Any], upstream_path: str
) -> None:
    exchange = await make(answer(200, b'{"object":"list"}')).run(path, body)
    assert exchange.seen[0].path == upstream_path
    assert exchange.body == b'{"object":"list"}'


async def test_large_success_bodies_are_relayed_whole(make: Make) -> None:
    vectors = orjson.dumps({"object": "list", "data": [{"embedding": [0.5] * 400_000}]})
    assert len(vectors) > 1 << 20
    exchange = await make(answer(200, vectors)).run("/v1/embeddings", {"model": "e", "input": "a"})
    assert exchange.body == vectors


async def test_invalid_requests_never_reach_the_upstream(make: Make) -> None:
    exchange = make(answer(200))
    with pytest.raises(BadRequest) as caught:
        await exchange.run("/v1/chat/completions", {"model": "m"})
    assert caught.value.param == "messages"
    with pytest.raises(BadRequest):
        await exchange.run("/v1/chat/completions", b"[1, 2]")
    assert exchange.seen == []


async def test_openai_shaped_upstream_errors_pass_through(make: Make) -> None:
    error = b'{"error":{"message":"slow down","type":"rate_limit_exceeded","code":null}}'
    exchange = make(answer(429, error, **{"x-ratelimit-reset-requests": "1s"}))
    await exchange.run("/v1/chat/completions", CHAT)
    assert exchange.status == 429
    assert exchange.body == error
    assert exchange.headers[b"x-ratelimit-reset-requests"] == b"1s"


@pytest.mark.parametrize(
    ("status", "content"), [(500, b"<html>oops http://u:p@h</html>"), (200, b"not json")]
)
async def test_unusable_answers_are_502(make: Make, status: int, content: bytes) -> None:
    exchange = make(answer(status, content))
    with pytest.raises(UpstreamError) as caught:
        await exchange.run("/v1/chat/completions", CHAT)
    assert "u:p" not in caught.value.message
    assert exchange.sent == []


async def test_oversized_error_body_is_a_502_and_its_connection_is_not_reused(
    make: Make,
) -> None:
    huge = b'{"error":{"message":"' + b"x" * (2 << 20) + b'"}}'
    exchange = make(answer(500, huge))
    with pytest.raises(UpstreamError):
        await exchange.run("/v1/chat/completions", CHAT)
    exchange.upstream.handler = answer(200)
    await exchange.run("/v1/chat/completions", CHAT)
    first, second = exchange.seen
    assert first.client_port != second.client_port


async def test_connections_are_reused(make: Make) -> None:
    exchange = make(answer(200))
    for _ in range(3):
        await exchange.run("/v1/chat/completions", CHAT)
    assert len({seen.client_port for seen in exchange.seen}) == 1


async def hang_up(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response(body=CHAT_OK)


async def slow_answer(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(10)
    return web.Response(body=CHAT_OK)


async def test_refused_connection_is_a_502(make: Make) -> None:
    exchange = make(answer(200), config={"endpoint_url": f"http://127.0.0.1:{closed_port()}/v1"})
    with pytest.raises(UpstreamError) as caught:
        await exchange.run("/v1/chat/completions", CHAT)
    assert caught.value.code == "bad_gateway"
    assert "127.0.0.1" not in caught.value.message


async def test_connection_dropped_before_an_answer_is_a_502(make: Make) -> None:
    with pytest.raises(UpstreamError) as caught:
        await make(hang_up).run("/v1/chat/completions", CHAT)
    assert "ServerDisconnectedError" in caught.value.message


async def test_connect_timeout_is_a_504(make: Make, unresponsive: str) -> None:
    exchange = make(
        answer(200), config={"endpoint_url": unresponsive, "timeouts": {"connect_s": 0.2}}
    )
    with pytest.raises(UpstreamTimeout) as caught:
        await exchange.run("/v1/chat/completions", CHAT)
    assert "connecting" in caught.value.message


async def test_read_timeout_is_a_504(make: Make) -> None:
    exchange = make(slow_answer, config={"timeouts": {"read_s": 0.1}})
    with pytest.raises(UpstreamTimeout) as caught:
        await exchange.run("/v1/chat/completions", CHAT)
    assert "read timeout" in caught.value.message


async def test_waiting_too_long_for_a_pooled_connection_is_a_504(upstream: FakeUpstream) -> None:
    async with gateway_session(limit=1) as one_connection:
        upstream.handler = slow_answer
        busy = asyncio.create_task(
            Exchange(upstream, one_connection).run("/v1/models", None, "GET")
        )
        await upstream.requested.wait()
        waiting = Exchange(upstream, one_connection, config={"timeouts": {"connect_s": 0.1}})
        with pytest.raises(UpstreamTimeout):
            await waiting.run("/v1/chat/completions", CHAT)
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
    assert len(upstream.seen) == 1


async def test_total_time_limit_is_a_504(make: Make) -> None:
    exchange = make(slow_answer, config={"timeouts": {"total_s": 0.05}})
    with pytest.raises(UpstreamTimeout) as caught:
        await exchange.run("/v1/chat/completions", CHAT)
    assert "0.05 s" in caught.value.message


async def test_client_disconnect_cancels_the_upstream_call(make: Make) -> None:
    cancelled = asyncio.Event()
    exchange: Exchange

    async def hanging(request: web.Request) -> web.StreamResponse:
        exchange.disconnect.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response(body=CHAT_OK)

    exchange = make(hanging)
    await exchange.run("/v1/chat/completions", CHAT)
    # The upstream learns of it when its connection closes.
    await asyncio.wait_for(cancelled.wait(), 5)
    assert exchange.sent == []


# --- failover ---------------------------------------------------------------------------------


async def test_refused_primary_fails_over_to_the_fallback(
    make: Make, upstream: FakeUpstream
) -> None:
    exchange = make(
        answer(200),
        endpoints=UpstreamEndpoints(
            primary=f"http://127.0.0.1:{closed_port()}/v1", fallback=upstream.url("/fb/v1")
        ),
        config={"api_key": Secret("sk-1")},
    )
    await exchange.run("/v1/chat/completions", CHAT)
    [sent] = exchange.seen
    assert sent.path == "/fb/v1/chat/completions"
    assert sent.body == orjson.dumps(CHAT)
    assert sent.headers["authorization"] == "Bearer sk-1"
    assert sent.headers["x-request-id"] == "req-123"
    assert exchange.status == 200
    assert exchange.body == CHAT_OK


async def test_unresponsive_primary_fails_over_to_the_fallback(
    make: Make, upstream: FakeUpstream, unresponsive: str
) -> None:
    exchange = make(
        answer(200),
        endpoints=UpstreamEndpoints(primary=unresponsive, fallback=upstream.url("/fb/v1")),
        config={"timeouts": {"connect_s": 0.2}},
    )
    await exchange.run("/v1/chat/completions", {**CHAT, "stream": True})
    assert [seen.path for seen in exchange.seen] == ["/fb/v1/chat/completions"]
    assert exchange.status == 200


@pytest.mark.parametrize("handler", [answer(503, b"busy"), hang_up], ids=["503", "hang-up"])
async def test_a_primary_that_saw_the_request_is_not_retried(
    make: Make, upstream: FakeUpstream, handler: UpstreamHandler
) -> None:
    exchange = make(
        handler,
        endpoints=UpstreamEndpoints(
            primary=upstream.url("/primary/v1"), fallback=upstream.url("/fb/v1")
        ),
    )
    with pytest.raises(UpstreamError):
        await exchange.run("/v1/chat/completions", CHAT)
    assert [seen.path for seen in exchange.seen] == ["/primary/v1/chat/completions"]


# --- streaming --------------------------------------------------------------------------------

EVENTS = [
    b'data: {"choices":[{"delta":{"content":"H\xc3\xa9l"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"lo \xe2\x9c\x93"}}]}\n\n',
    b'data: {"choices":[],"usage":{"total_tokens":3}}\n\n',
    b"data: [DONE]\n\n",
]
PARTIAL = b'data: {"partial'
FINISH = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'


class Pause(float):
    """A streaming step: wait this many seconds."""


class Break:
    """A streaming step: drop the connection mid-body."""


Step = bytes | Pause | Break


def streaming(
    *steps: Step, status: int = 200, content_type: str = "text/event-stream"
) -> UpstreamHandler:
    """Answer with a chunked body written step by step, each write flushed to the socket."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=status,
            headers={"content-type": content_type, "x-ratelimit-limit-requests": "5"},
        )
        await response.prepare(request)
        for step in steps:
            if isinstance(step, Break):
                assert request.transport is not None
                request.transport.abort()
                return response
            if isinstance(step, Pause):
                await asyncio.sleep(step)
                continue
            await response.write(step)  # waits for the transport to drain
            await asyncio.sleep(0.002)  # lets each write arrive as its own read
        await response.write_eof()
        return response

    return handler


def split(data: bytes, size: int = 7) -> list[bytes]:
    # Arbitrary cuts, inside events and inside UTF-8 sequences, as a network would deliver them.
    return [data[start : start + size] for start in range(0, len(data), size)]


STREAM_BODY = {
    "model": "m",
    "messages": [USER],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def body_messages(exchange: Exchange) -> list[dict[str, Any]]:
    return [m for m in exchange.sent if m["type"] == "http.response.body"]


def assert_ended(exchange: Exchange) -> None:
    bodies = body_messages(exchange)
    assert all(m["more_body"] is True for m in bodies[:-1])
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_stream_is_relayed_event_by_event(make: Make) -> None:
    exchange = await make(streaming(*split(b"".join(EVENTS)))).run(
        "/v1/chat/completions", STREAM_BODY
    )
    sent = exchange.seen[0]
    assert sent.headers["accept"] == "text/event-stream"
    assert orjson.loads(sent.body)["stream_options"] == {"include_usage": True}
    assert exchange.status == 200
    assert exchange.headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert exchange.headers[b"cache-control"] == b"no-cache"
    assert exchange.headers[b"x-accel-buffering"] == b"no"
    assert exchange.headers[b"x-ratelimit-limit-requests"] == b"5"
    assert b"content-length" not in exchange.headers
    bodies = body_messages(exchange)
    assert exchange.body == b"".join(EVENTS)
    assert len(bodies) > 2, "events are relayed as they arrive, not at the end"
    for message in bodies[:-1]:
        assert message["more_body"] is True
        assert message["body"].endswith(b"\n\n"), "only whole events are sent"
    assert_ended(exchange)


async def test_stream_tail_without_blank_line_is_dropped(make: Make) -> None:
    # WHATWG rules: an event the stream's end cuts off is never dispatched, so it is not relayed;
    # the answer had finished, so the client gets fd2's own [DONE] in its place.
    exchange = make(streaming(EVENTS[0], FINISH, b"data: [DONE]"))
    await exchange.run("/v1/chat/completions", {**STREAM_BODY, "stream_options": None})
    assert exchange.body == EVENTS[0] + FINISH + b"data: [DONE]\n\n"
    assert_ended(exchange)


async def test_usage_is_added_when_asked_and_missing(make: Make) -> None:
    exchange = make(streaming(EVENTS[0], EVENTS[1], b"data: [DONE]\n\n"))
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    relayed = EVENTS[0] + EVENTS[1]
    assert exchange.body.startswith(relayed)
    assert exchange.body.endswith(b"\n\ndata: [DONE]\n\n")
    added = orjson.loads(exchange.body[len(relayed) + len(b"data: ") : -len(b"data: [DONE]\n\n")])
    completion = count_tokens("Hél" + "lo ✓")
    prompt = count_chat([USER])
    assert added["choices"] == []
    assert added["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    assert_ended(exchange)


# --- usage reported to the core (fd2.metering) ---------------------------------------------------


def metered(request: Request) -> None:
    request.metered = True  # a token limit will settle with this request's usage


async def test_a_whole_answers_usage_is_reported_from_the_body_as_read(make: Make) -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 8},
    }
    body = orjson.dumps({"id": "c", "object": "chat.completion", "choices": [], "usage": usage})
    exchange = await make(answer(200, body)).run("/v1/chat/completions", CHAT, before=metered)
    assert exchange.body == body
    assert exchange.request.usage == Usage(prompt_tokens=12, completion_tokens=5, cached_tokens=8)
    # nothing reads an unmetered request's usage: no work is done for it
    unread = await make(answer(200, body)).run("/v1/chat/completions", CHAT)
    assert unread.request.usage is None


async def test_an_answer_without_usage_reports_none(make: Make) -> None:
    exchange = await make(answer(200)).run("/v1/chat/completions", CHAT, before=metered)
    assert exchange.request.usage is None  # the core then charges the estimate


async def test_a_streams_own_usage_is_reported_as_the_framer_read_it(make: Make) -> None:
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n'
    exchange = make(streaming(EVENTS[0], usage, EVENTS[3]))
    await exchange.run("/v1/chat/completions", STREAM_BODY, before=metered)
    assert exchange.body == EVENTS[0] + usage + EVENTS[3]  # relayed untouched, nothing added
    assert exchange.request.usage == Usage(prompt_tokens=4, completion_tokens=2)


async def test_a_metered_stream_without_usage_is_counted_but_not_told(make: Make) -> None:
    exchange = make(streaming(EVENTS[0], EVENTS[1], EVENTS[3]))
    await exchange.run(
        "/v1/chat/completions", {**STREAM_BODY, "stream_options": None}, before=metered
    )
    assert exchange.body == EVENTS[0] + EVENTS[1] + EVENTS[3]  # the client did not ask
    assert exchange.request.usage == Usage(
        prompt_tokens=count_chat([USER]), completion_tokens=count_tokens("Hél" + "lo ✓")
    )


async def test_an_unmetered_stream_that_asked_nothing_counts_nothing(make: Make) -> None:
    exchange = make(streaming(EVENTS[0], EVENTS[3]))
    await exchange.run("/v1/chat/completions", {**STREAM_BODY, "stream_options": None})
    assert exchange.request.usage is None and exchange.request.cost is None


async def test_the_added_usage_chunk_reuses_the_requests_estimate(make: Make) -> None:
    # The limits step estimated the request already: its prompt count is not made again.
    def estimated(request: Request) -> None:
        metered(request)
        request.cost = Cost(model="m", prompt_tokens=999, completion_bound=10)

    exchange = make(streaming(EVENTS[0], b"data: [DONE]\n\n"))
    await exchange.run("/v1/chat/completions", STREAM_BODY, before=estimated)
    added = orjson.loads(exchange.body[len(EVENTS[0]) + 6 : -len(b"data: [DONE]\n\n")])
    completion = count_tokens("Hél")
    assert added["usage"] == {
        "prompt_tokens": 999,
        "completion_tokens": completion,
        "total_tokens": 999 + completion,
    }
    assert exchange.request.usage == Usage(prompt_tokens=999, completion_tokens=completion)


async def test_meters_cover_the_inference_endpoints(make: Make) -> None:
    exchange = await make(answer(200)).run("/v1/models", method="GET")
    assert set(exchange.module.meters()) == {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/messages",  # Anthropic's Messages API (fd2_inference.inbound), on every module
        "/v1/responses",  # OpenAI's Responses API (fd2_inference.responses), on every module
    }
    chat_only = make(answer(200), config={"endpoint_url": exchange.upstream.url("/invoke")})
    await chat_only.run("/v1/chat/completions", CHAT)
    assert set(chat_only.module.meters()) == {
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/responses",
    }


async def test_finished_stream_without_done_ends_with_fd2s_done(make: Make) -> None:
    exchange = make(streaming(EVENTS[0], FINISH, EVENTS[2]))
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.body == EVENTS[0] + FINISH + EVENTS[2] + b"data: [DONE]\n\n"
    assert b"error" not in exchange.body
    assert_ended(exchange)


async def test_completed_stream_leaves_its_connection_for_reuse(make: Make) -> None:
    exchange = make(streaming(*EVENTS))
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    exchange.upstream.handler = answer(200)
    await exchange.run("/v1/chat/completions", CHAT)
    first, second = exchange.seen
    assert first.client_port == second.client_port


def framer_limited_to(size: int) -> Callable[[], SseFramer]:
    return functools.partial(SseFramer, max_event_bytes=size)


class _SendFails:
    """A `send` hook raising once, on the second body part: a failure that is nobody's error."""

    def __init__(self) -> None:
        self.bodies = 0

    def __call__(self, message: dict[str, Any]) -> None:
        if message.get("body"):
            self.bodies += 1
            if self.bodies == 2:
                raise RuntimeError("bug")


@pytest.mark.parametrize(
    ("failure", "options", "code"),
    [
        ("break", {}, "bad_gateway"),
        ("read timeout", {"config": {"timeouts": {"read_s": 0.1}}}, "gateway_timeout"),
        ("oversized event", {}, "bad_gateway"),
        ("bug", {}, "bad_gateway"),
    ],
)
async def test_failure_mid_stream_becomes_an_error_event(
    make: Make,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
    options: dict[str, Any],
    code: str,
) -> None:
    last: Step = Break() if failure == "break" else Pause(10)
    on_send = None
    if failure == "oversized event":
        monkeypatch.setattr(
            "fd2_inference.streaming.SseFramer", framer_limited_to(len(EVENTS[0]) + 4)
        )
        last = b"x" * 64
    if failure == "bug":
        on_send = _SendFails()
        last = EVENTS[1]
    exchange = make(streaming(EVENTS[0] + PARTIAL, last, EVENTS[-1]), **options)
    await exchange.run("/v1/chat/completions", STREAM_BODY, on_send=on_send)
    assert exchange.status == 200
    events = exchange.body.split(b"\n\n")
    assert exchange.body.startswith(EVENTS[0])
    assert b"partial" not in exchange.body
    error = orjson.loads(events[1].removeprefix(b"data: "))
    assert error["error"]["code"] == code
    assert set(error["error"]) == {"message", "type", "code", "param"}
    assert events[2:] == [b""]
    assert_ended(exchange)


async def test_total_limit_mid_stream_becomes_an_error_event(make: Make) -> None:
    exchange = make(
        streaming(EVENTS[0], Pause(10), EVENTS[-1]), config={"timeouts": {"total_s": 0.2}}
    )
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.body.startswith(EVENTS[0])
    assert b'"gateway_timeout"' in exchange.body
    assert_ended(exchange)


async def test_stream_request_answered_with_an_error_is_passed_through(make: Make) -> None:
    error = b'{"error":{"message":"bad model","type":"invalid_request_error","code":null}}'
    exchange = make(answer(404, error, **{"content-type": "application/json"}))
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.status == 404
    assert exchange.body == error


async def test_event_stream_with_an_error_status_is_answered_as_an_error(make: Make) -> None:
    error = b'{"error":{"message":"slow down","type":"rate_limit_exceeded","code":null}}'
    exchange = make(streaming(error, status=429))
    await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.status == 429
    assert exchange.headers[b"content-type"] == b"application/json"
    assert exchange.headers[b"x-ratelimit-limit-requests"] == b"5"
    assert exchange.body == error


async def test_event_stream_of_events_with_an_error_status_is_502(make: Make) -> None:
    exchange = make(streaming(*EVENTS, status=500))
    with pytest.raises(UpstreamError) as caught:
        await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert "HTTP 500" in caught.value.message
    assert exchange.sent == []


async def test_stream_request_answered_without_a_stream_or_error_is_502(make: Make) -> None:
    exchange = make(answer(503, b"Service Unavailable", **{"content-type": "text/plain"}))
    with pytest.raises(UpstreamError):
        await exchange.run("/v1/chat/completions", STREAM_BODY)
    assert exchange.sent == []


async def test_client_disconnect_mid_stream_closes_the_upstream_stream(make: Make) -> None:
    cancelled = asyncio.Event()
    exchange: Exchange

    async def chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(EVENTS[0])
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        await response.write(EVENTS[-1])
        return response

    def on_send(message: dict[str, Any]) -> None:
        if message.get("body"):
            exchange.disconnect.set()

    exchange = make(chunks)
    await exchange.run("/v1/chat/completions", STREAM_BODY, on_send=on_send)
    # Cancelling the relay closed the upstream connection (a half-read one is never pooled),
    # which is how the upstream learns that nobody is listening any more.
    await asyncio.wait_for(cancelled.wait(), 5)
    assert exchange.body == EVENTS[0]
    assert all(m.get("more_body", True) for m in body_messages(exchange))


@pytest.mark.parametrize("chunked", [False, True])
async def test_success_bodies_past_the_limit_are_not_read_whole(
    upstream: FakeUpstream, session: aiohttp.ClientSession, chunked: bool
) -> None:
    big = orjson.dumps({"data": "x" * 5000})

    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(status=200, body=big)
        response = web.StreamResponse(status=200)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(big), 1000):
            await response.write(big[start : start + 1000])
        await response.write_eof()
        return response

    upstream.handler = handler
    async with session.get(upstream.url("/v1/models")) as response:
        assert await read_answer(response, 100, success_limit=4096) is None
    async with session.get(upstream.url("/v1/models")) as response:
        assert await read_answer(response, 100, success_limit=len(big)) == big
    with pytest.raises(UpstreamError, match="too large"):
        settle(200, None)
