"""The module's handlers against a mocked upstream (httpx.MockTransport) and a recording `send`.

Real sockets, Granian and the official SDK are exercised by the end-to-end suite; this checks
what each handler sends upstream and answers, error mapping, streaming and disconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
import orjson
import pytest

from fd2.errors import BadRequest, ConfigError, UpstreamError, UpstreamTimeout
from fd2.module import ModuleContext, Timeouts, UpstreamEndpoints
from fd2.request import Request
from fd2.secrets import Secret
from inference_openai import InferenceOpenAIModule

UpstreamHandler = Callable[[httpx.Request], Awaitable[httpx.Response]]
CHAT_OK = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'
USER = {"role": "user", "content": "hi"}


class Exchange:
    """One request through a freshly set-up module, recording both sides."""

    def __init__(
        self,
        upstream: UpstreamHandler,
        *,
        config: Mapping[str, Any] | None = None,
        references: Mapping[str, Secret | None] | None = None,
        endpoints: UpstreamEndpoints | None = None,
    ) -> None:
        self.upstream = upstream
        self.config = {"endpoint_url": "http://up.test/v1/chat/completions", **(config or {})}
        self.references = references or {}
        self.endpoints = endpoints
        self.seen: list[httpx.Request] = []
        self.sent: list[dict[str, Any]] = []
        self.disconnect = asyncio.Event()

    async def _transport(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return await self.upstream(request)

    def context(self, client: httpx.AsyncClient) -> ModuleContext:
        return ModuleContext(
            project="acme",
            module="chat",
            environment="development",
            module_type="inference_endpoint",
            config=self.config,
            references=self.references,
            endpoints=self.endpoints,
            timeouts=Timeouts(connect_s=1, read_s=5, total_s=5),
            http=client,
            logger=logging.getLogger("fd2.module.test"),
        )

    async def run(
        self,
        path: str,
        body: bytes = b"",
        method: str = "POST",
        on_send: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        module = InferenceOpenAIModule()
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await self.disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            self.sent.append(message)
            if on_send is not None:
                on_send(message)

        scope = {
            "type": "http",
            "method": method,
            "path": f"/acme/chat{path}",
            "headers": [(b"authorization", b"Bearer client-token")],
        }
        request = Request(
            scope,
            receive,
            request_id="req-123",
            project="acme",
            module="chat",
            environment="development",
            path=path,
            content_length=len(body),
            max_body=1 << 20,
        )
        async with httpx.AsyncClient(transport=httpx.MockTransport(self._transport)) as client:
            await module.setup(self.context(client))
            await module.endpoints()[path][method](request, send)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def run(exchange: Exchange, path: str, body: Any = None, **kwargs: Any) -> Exchange:
    raw = body if isinstance(body, bytes) else b"" if body is None else orjson.dumps(body)
    asyncio.run(exchange.run(path, raw, **kwargs))
    return exchange


def answer(status: int, content: bytes = CHAT_OK, **headers: str) -> UpstreamHandler:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers)

    return handler


# --- set-up -----------------------------------------------------------------------------------


def test_setup_needs_an_upstream() -> None:
    exchange = Exchange(answer(200), config={"endpoint_url": None})
    with pytest.raises(ConfigError):
        run(exchange, "/v1/models", method="GET")


def test_primary_endpoint_and_reference_key_are_used() -> None:
    exchange = Exchange(
        answer(200, b'{"object":"list","data":[]}'),
        endpoints=UpstreamEndpoints(primary="http://primary.test/v1"),
        references={"api_key": Secret("ref-key-1", "env:X")},
    )
    run(exchange, "/v1/models", method="GET")
    sent = exchange.seen[0]
    assert str(sent.url) == "http://primary.test/v1/models"
    assert sent.method == "GET"
    assert sent.headers["authorization"] == "Bearer ref-key-1"
    assert exchange.status == 200
    assert exchange.body == b'{"object":"list","data":[]}'


def test_no_key_means_no_authorization_header() -> None:
    exchange = run(
        Exchange(answer(200)), "/v1/chat/completions", {"model": "m", "messages": [USER]}
    )
    assert "authorization" not in exchange.seen[0].headers


# --- non-streaming ----------------------------------------------------------------------------


def test_chat_forwards_original_bytes_and_relays_the_answer() -> None:
    original = b'{"model": "m",   "messages": [{"role": "user", "content": "hi"}]}'
    exchange = Exchange(
        answer(200, CHAT_OK, **{"x-ratelimit-remaining-tokens": "9", "openai-processing-ms": "7"}),
        config={"api_key": Secret("sk-upstream-1")},
    )
    run(exchange, "/v1/chat/completions", original)
    sent = exchange.seen[0]
    assert str(sent.url) == "http://up.test/v1/chat/completions"
    assert sent.content == original
    assert sent.headers["authorization"] == "Bearer sk-upstream-1"
    assert sent.headers["x-request-id"] == "req-123"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/json"
    assert exchange.status == 200
    assert exchange.body == CHAT_OK
    assert exchange.headers[b"content-type"] == b"application/json"
    assert exchange.headers[b"x-ratelimit-remaining-tokens"] == b"9"
    assert exchange.headers[b"openai-processing-ms"] == b"7"


def test_manifest_defaults_are_sent_upstream() -> None:
    exchange = Exchange(
        answer(200),
        config={"model_name": "gpt-4o-mini", "system_prompt": "Be nice.", "max_tokens": 64},
    )
    run(exchange, "/v1/chat/completions", {"messages": [USER], "temperature": 1})
    assert orjson.loads(exchange.seen[0].content) == {
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
def test_other_endpoints_are_proxied(path: str, body: dict[str, Any], upstream_path: str) -> None:
    exchange = run(Exchange(answer(200, b'{"object":"list"}')), path, body)
    assert exchange.seen[0].url.path == upstream_path
    assert exchange.body == b'{"object":"list"}'


def test_invalid_requests_never_reach_the_upstream() -> None:
    exchange = Exchange(answer(200))
    with pytest.raises(BadRequest) as caught:
        run(exchange, "/v1/chat/completions", {"model": "m"})
    assert caught.value.param == "messages"
    with pytest.raises(BadRequest):
        run(exchange, "/v1/chat/completions", b"[1, 2]")
    assert exchange.seen == []


def test_openai_shaped_upstream_errors_pass_through() -> None:
    error = b'{"error":{"message":"slow down","type":"rate_limit_exceeded","code":null}}'
    exchange = run(
        Exchange(answer(429, error, **{"x-ratelimit-reset-requests": "1s"})),
        "/v1/chat/completions",
        {"model": "m", "messages": [USER]},
    )
    assert exchange.status == 429
    assert exchange.body == error
    assert exchange.headers[b"x-ratelimit-reset-requests"] == b"1s"


@pytest.mark.parametrize(
    ("status", "content"), [(500, b"<html>oops http://u:p@h</html>"), (200, b"not json")]
)
def test_unusable_answers_are_502(status: int, content: bytes) -> None:
    exchange = Exchange(answer(status, content))
    with pytest.raises(UpstreamError) as caught:
        run(exchange, "/v1/chat/completions", {"model": "m", "messages": [USER]})
    assert "u:p" not in caught.value.message
    assert exchange.sent == []


def failing(exc: Exception) -> UpstreamHandler:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), UpstreamError),
        (httpx.RemoteProtocolError("broken"), UpstreamError),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout),
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.PoolTimeout("busy"), UpstreamTimeout),
    ],
)
def test_transport_failures(exc: Exception, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        run(Exchange(failing(exc)), "/v1/chat/completions", {"model": "m", "messages": [USER]})


def test_total_time_limit_is_a_504() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200, content=CHAT_OK)

    exchange = Exchange(slow, config={"timeouts": {"total_s": 0.05}})
    with pytest.raises(UpstreamTimeout):
        run(exchange, "/v1/chat/completions", {"model": "m", "messages": [USER]})


def test_client_disconnect_cancels_the_upstream_call() -> None:
    cancelled = False
    exchange: Exchange

    async def hanging(request: httpx.Request) -> httpx.Response:
        nonlocal cancelled
        exchange.disconnect.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled = True
            raise
        return httpx.Response(200, content=CHAT_OK)

    exchange = Exchange(hanging)
    run(exchange, "/v1/chat/completions", {"model": "m", "messages": [USER]})
    assert cancelled
    assert exchange.sent == []


# --- streaming --------------------------------------------------------------------------------

EVENTS = [
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n',
    b'data: {"choices":[],"usage":{"total_tokens":3}}\n\n',
    b"data: [DONE]\n\n",
]


def streaming(chunks: Callable[[], AsyncIterator[bytes]], status: int = 200) -> UpstreamHandler:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            content=chunks(),
            headers={"content-type": "text/event-stream", "x-ratelimit-limit-requests": "5"},
        )

    return handler


def split_events() -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        data = b"".join(EVENTS)
        # Arbitrary cuts, including mid-event, as a network would deliver them.
        for start in range(0, len(data), 7):
            yield data[start : start + 7]

    return chunks()


STREAM_BODY = {
    "model": "m",
    "messages": [USER],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def body_messages(exchange: Exchange) -> list[dict[str, Any]]:
    return [m for m in exchange.sent if m["type"] == "http.response.body"]


def test_stream_is_relayed_event_by_event() -> None:
    exchange = run(Exchange(streaming(split_events)), "/v1/chat/completions", STREAM_BODY)
    sent = exchange.seen[0]
    assert sent.headers["accept"] == "text/event-stream"
    assert orjson.loads(sent.content)["stream_options"] == {"include_usage": True}
    assert exchange.status == 200
    assert exchange.headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert exchange.headers[b"cache-control"] == b"no-cache"
    assert exchange.headers[b"x-accel-buffering"] == b"no"
    assert exchange.headers[b"x-ratelimit-limit-requests"] == b"5"
    assert b"content-length" not in exchange.headers
    bodies = body_messages(exchange)
    assert exchange.body == b"".join(EVENTS)
    for message in bodies[:-1]:
        assert message["more_body"] is True
        assert message["body"].endswith(b"\n\n"), "only whole events are sent"
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


def test_stream_tail_without_blank_line_is_terminated() -> None:

    async def chunks() -> AsyncIterator[bytes]:
        yield EVENTS[0]
        yield b"data: [DONE]"

    exchange = run(Exchange(streaming(chunks)), "/v1/chat/completions", STREAM_BODY)
    assert exchange.body == EVENTS[0] + b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (httpx.ReadTimeout("slow"), "gateway_timeout"),
        (httpx.RemoteProtocolError("peer closed"), "bad_gateway"),
        (RuntimeError("bug"), "bad_gateway"),
    ],
)
def test_failure_mid_stream_becomes_an_error_event(failure: Exception, code: str) -> None:

    async def chunks() -> AsyncIterator[bytes]:
        yield EVENTS[0] + b'data: {"partial'
        raise failure

    exchange = run(Exchange(streaming(chunks)), "/v1/chat/completions", STREAM_BODY)
    assert exchange.status == 200
    events = exchange.body.split(b"\n\n")
    assert exchange.body.startswith(EVENTS[0])
    assert b"partial" not in exchange.body
    error = orjson.loads(events[1].removeprefix(b"data: "))
    assert error["error"]["code"] == code
    assert set(error["error"]) == {"message", "type", "code", "param"}
    assert body_messages(exchange)[-1]["more_body"] is False


def test_total_limit_mid_stream_becomes_an_error_event() -> None:

    async def chunks() -> AsyncIterator[bytes]:
        yield EVENTS[0]
        await asyncio.sleep(10)
        yield EVENTS[-1]

    exchange = Exchange(streaming(chunks), config={"timeouts": {"total_s": 0.1}})
    run(exchange, "/v1/chat/completions", STREAM_BODY)
    assert exchange.body.startswith(EVENTS[0])
    assert b'"gateway_timeout"' in exchange.body
    assert body_messages(exchange)[-1]["more_body"] is False


def test_stream_request_answered_with_an_error_is_passed_through() -> None:
    error = b'{"error":{"message":"bad model","type":"invalid_request_error","code":null}}'
    exchange = run(
        Exchange(answer(404, error, **{"content-type": "application/json"})),
        "/v1/chat/completions",
        STREAM_BODY,
    )
    assert exchange.status == 404
    assert exchange.body == error


def test_stream_request_answered_without_a_stream_or_error_is_502() -> None:
    exchange = Exchange(answer(503, b"Service Unavailable", **{"content-type": "text/plain"}))
    with pytest.raises(UpstreamError):
        run(exchange, "/v1/chat/completions", STREAM_BODY)
    assert exchange.sent == []


def test_client_disconnect_mid_stream_closes_the_upstream_stream() -> None:
    closed = False
    exchange: Exchange

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal closed
        try:
            yield EVENTS[0]
            await asyncio.sleep(10)
            yield EVENTS[-1]
        finally:
            closed = True

    def on_send(message: dict[str, Any]) -> None:
        if message.get("body"):
            exchange.disconnect.set()

    exchange = Exchange(streaming(chunks))
    run(exchange, "/v1/chat/completions", STREAM_BODY, on_send=on_send)
    assert closed
    assert exchange.body == EVENTS[0]
    assert all(m.get("more_body", True) for m in body_messages(exchange))
