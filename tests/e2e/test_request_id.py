"""X-Request-ID on every answer: a sane one from the client is echoed, anything else replaced."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from .conftest import Service
from .support import chat_body, raw_request

SANE_ID = re.compile(r"^[\x21-\x7e]{1,200}$")


def _one_request_id(values: list[str]) -> str:
    assert len(values) == 1, f"expected exactly one X-Request-ID, got {values}"
    value = values[0]
    assert SANE_ID.match(value), value
    return value


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/acme/chat/v1/chat/completions", chat_body(), id="success"),
        pytest.param(
            "POST",
            "/acme/chat/v1/chat/completions",
            chat_body("chunks-3", stream=True),
            id="stream",
        ),
        pytest.param("POST", "/acme/chat/v1/chat/completions", b"{", id="bad-json"),
        pytest.param("POST", "/nobody/chat/v1/chat/completions", chat_body(), id="404"),
        pytest.param("GET", "/acme/chat/v1/chat/completions", b"", id="405"),
        pytest.param(
            "POST", "/acme/chat/v1/chat/completions", chat_body("error-429"), id="upstream-429"
        ),
        pytest.param(
            "POST", "/acme/chat/v1/chat/completions", chat_body("garbage"), id="upstream-502"
        ),
        pytest.param(
            "POST",
            "/acme/chat/v1/chat/completions",
            chat_body("stream-break", stream=True),
            id="broken-stream",
        ),
        pytest.param("POST", "/acme/embed/v1/embeddings", b'{"input": "x"}', id="embeddings"),
        pytest.param("GET", "/acme/chat/v1/models", b"", id="models"),
        pytest.param("GET", "/healthz", b"", id="healthz"),
    ],
)
def test_every_answer_has_a_request_id(fd2: Service, method: str, path: str, body: bytes) -> None:
    response = raw_request(fd2.port, method, path.encode(), [], body)
    request_id = _one_request_id(response.header_all("x-request-id"))
    assert not request_id.startswith("req_standin_"), "the upstream's id is not fd2's"


def test_generated_ids_differ(http: httpx.Client) -> None:
    ids = {
        http.post("/acme/chat/v1/chat/completions", content=chat_body()).headers["x-request-id"]
        for _ in range(5)
    }
    assert len(ids) == 5


@pytest.mark.parametrize(
    "sent", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "trace_01.ABC:7"]
)
def test_sane_client_id_is_echoed(http: httpx.Client, sent: str) -> None:
    for path, body in (
        ("/acme/chat/v1/chat/completions", chat_body()),
        ("/acme/chat/v1/chat/completions", b"{"),
        ("/nobody/x/v1/chat/completions", chat_body()),
    ):
        response = http.post(path, content=body, headers={"X-Request-ID": sent})
        assert response.headers.get_list("x-request-id") == [sent], (path, response.status_code)


def test_sane_client_id_is_echoed_on_a_stream(client: openai.OpenAI) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="chunks-2",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers={"X-Request-ID": "abc-123"},
    ) as raw:
        assert raw.headers.get("x-request-id") == "abc-123"
        list(raw.parse())


def test_sdk_success_has_a_request_id(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="standin-echo", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers.get("x-request-id")
    assert raw.parse().choices


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"x" * 300, id="too-long"),
        pytest.param(b"abc 123", id="space"),
        pytest.param(b"abc\t123", id="tab"),
        pytest.param(b"caf\xc3\xa9-1", id="non-ascii"),
    ],
)
def test_insane_client_id_is_replaced(fd2: Service, sent: bytes) -> None:
    response = raw_request(
        fd2.port,
        "POST",
        b"/acme/chat/v1/chat/completions",
        [(b"x-request-id", sent)],
        chat_body(),
    )
    assert response.status == 200, response.body[:300]
    request_id = _one_request_id(response.header_all("x-request-id"))
    assert request_id.encode() != sent
    assert len(request_id) <= 128
    assert " " not in request_id
