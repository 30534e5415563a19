"""Errors: client mistakes, upstream failures and time limits, always in OpenAI's shape."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from .conftest import Service
from .support import (
    assert_no_leak,
    assert_openai_error,
    chat_body,
    raw_request,
    read_response,
)

USER = {"role": "user", "content": "hello"}
TEN_MIB = 10 * 1024 * 1024


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"model": "m", "messages": [', id="malformed-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'[{"role": "user"}]', id="array"),
        pytest.param(b'"just a string"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"model": "\xff\xfe", "messages": []}', id="invalid-utf8"),
        pytest.param(b'{"model": "standin-echo"}', id="missing-messages"),
    ],
)
def test_bad_bodies_are_400(http: httpx.Client, body: bytes) -> None:
    response = http.post(
        "/acme/chat/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = assert_openai_error(response.content, status=400)
    assert error["type"] == "invalid_request_error"


def test_announced_oversized_body_is_413_without_reading_it(fd2: Service) -> None:
    started = time.monotonic()
    response = raw_request(
        fd2.port,
        "POST",
        b"/acme/chat/v1/chat/completions",
        [(b"content-type", b"application/json")],
        b'{"model": "standin-echo", "messages": [',
        content_length=TEN_MIB + 1,
        timeout=10,
    )
    assert response.status == 413, (response.status, response.body[:300])
    assert_openai_error(response.body, status=413)
    assert time.monotonic() - started < 5


def test_chunked_oversized_body_is_413(fd2: Service) -> None:
    """A body without Content-Length is still cut off past the limit."""
    sock = socket.create_connection(("127.0.0.1", fd2.port), timeout=20)
    head = (
        b"POST /acme/chat/v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ntransfer-encoding: chunked\r\n"
        b"connection: close\r\n\r\n"
    )
    piece = b"a" * 65536
    frame = b"%x\r\n%s\r\n" % (len(piece), piece)

    def feed() -> None:
        try:
            sock.sendall(head)
            for _ in range((TEN_MIB * 12 // 10) // len(piece)):
                sock.sendall(frame)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # fd2 answered and closed early: what a limit should do

    sender = threading.Thread(target=feed, daemon=True)
    sender.start()
    try:
        response = read_response(sock)
    finally:
        sender.join(20)
        sock.close()
    assert response.status == 413, (response.status, response.body[:300])
    assert_openai_error(response.body, status=413)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_upstream_400_passes_through(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="error-400", messages=[USER], stream=stream)
    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["message"] == "stand-in says no"
    if not stream:
        assert_openai_error(caught.value.response.content, status=400)


def test_upstream_429_passes_through(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="error-429", messages=[USER])
    assert caught.value.status_code == 429
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["message"] == "stand-in says no: slow down"


@pytest.mark.parametrize("model", ["error-500-plain", "garbage"])
def test_upstream_nonsense_is_502(client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=model, messages=[USER])
    assert caught.value.status_code == 502
    assert_openai_error(caught.value.response.content, status=502)


def test_garbage_embeddings_are_502(make_client: Callable[..., openai.OpenAI]) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        make_client("acme/embed").embeddings.create(model="garbage", input="x")
    assert caught.value.status_code == 502


def test_unreachable_upstream_is_502(http: httpx.Client) -> None:
    response = http.post(
        "/billing/assistant/v1/chat/completions",
        content=chat_body(),
        headers={"X-Environment": "prod"},
    )
    assert response.status_code == 502, response.text
    assert_openai_error(response.content, status=502)


def test_slow_upstream_past_the_module_timeout_is_504(
    make_client: Callable[..., openai.OpenAI],
) -> None:
    sdk = make_client("quick/chat")
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="slow-3000", messages=[USER])
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert_openai_error(caught.value.response.content, status=504)
    assert elapsed < 2.5, f"504 after {elapsed:.2f}s: the module's 1 s limit was not applied"


def test_slow_stream_past_the_module_timeout_is_504(
    make_client: Callable[..., openai.OpenAI],
) -> None:
    sdk = make_client("quick/chat")
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="slow-3000", messages=[USER], stream=True)
    assert caught.value.status_code == 504


def test_quick_module_answers_fast_requests(make_client: Callable[..., openai.OpenAI]) -> None:
    answer = make_client("quick/chat").chat.completions.create(model="slow-100", messages=[USER])
    assert answer.choices[0].message.content


LEAK_PROBES = [
    pytest.param("POST", "/acme/chat/v1/chat/completions", b"{oops", {}, id="bad-json"),
    pytest.param("POST", "/acme/chat/v1/chat/completions", b"[]", {}, id="array"),
    pytest.param("POST", "/nobody/chat/v1/chat/completions", chat_body(), {}, id="unknown"),
    pytest.param("GET", "/acme/chat/v1/chat/completions", b"", {}, id="method"),
    pytest.param(
        "POST", "/acme/chat/v1/chat/completions", chat_body("error-400"), {}, id="upstream-400"
    ),
    pytest.param(
        "POST", "/acme/chat/v1/chat/completions", chat_body("error-500-plain"), {}, id="plain-500"
    ),
    pytest.param("POST", "/acme/chat/v1/chat/completions", chat_body("garbage"), {}, id="garbage"),
    pytest.param(
        "POST",
        "/acme/chat/v1/chat/completions",
        chat_body(),
        {"X-Environment": "staging"},
        id="unreachable",
    ),
    pytest.param(
        "POST",
        "/acme/chat/v1/chat/completions",
        chat_body("stream-break", stream=True),
        {},
        id="stream-break",
    ),
    pytest.param(
        "POST", "/acme/chat/v1/chat/completions", chat_body(), {"X-Environment": "qa"}, id="env"
    ),
    pytest.param("POST", "/quick/chat/v1/chat/completions", chat_body("slow-3000"), {}, id="504"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), LEAK_PROBES)
def test_no_traceback_or_key_in_any_answer(
    http: httpx.Client, method: str, path: str, body: bytes, headers: dict[str, str]
) -> None:
    response = http.request(method, path, content=body or None, headers=headers)
    assert_no_leak(response.content)
    headers_text = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    assert_no_leak(headers_text)
    if response.status_code >= 400:
        assert_openai_error(response.content, status=response.status_code)
