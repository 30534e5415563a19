"""Upstream answers a client must not get as they are (issue 19 G and L, streams): fd2 under
Granian, the OpenAI stand-in, a raw-socket upstream (answers without chunked framing), the
official SDK and raw sockets.

G: an upstream error that quotes the credentials fd2 sent — the module's key, an APISIX route's
secret headers, ai-proxy's header and query keys — reaches the client without them, as an answer
and as an in-stream error event. L: a stream cut where its framing cannot show it, a stream that
is not an event stream, and a stream the upstream ended early each end with an error event; a
whole one with `[DONE]`.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import (
    REPO,
    Service,
    build_manifest_dir,
    quick_manifest,
    start_fd2,
    start_service,
)
from .conftest import free_port as _free_port
from .leaks import LEAKS
from .support import (
    assert_no_leak,
    assert_openai_error,
    chat_body,
    raw_request,
    read_response,
    sse_events,
)

RAW_SCRIPT = REPO / "tests" / "standins" / "raw_upstream.py"
ACME_KEY = "test-acme-key"  # acme/chat's upstream key (tests/e2e/conftest.py)
ROUTE_HEADER_KEY = "route-header-secret-7f3a9c"
ROUTE_BEARER_KEY = "route-bearer-secret-2b8e1d"
AI_HEADER_KEY = "ai-proxy-header-key-61c0"
AI_QUERY_KEY = "ai-proxy-query-key/5e+d&"  # quoted URL-encoded by the upstream
SCRUB_PROJECT = "scrub-e2e"

for _secret in (ROUTE_HEADER_KEY, ROUTE_BEARER_KEY, AI_HEADER_KEY, AI_QUERY_KEY):
    LEAKS.add_secret(_secret)


def gateway_manifest(standin: str) -> dict[str, Any]:
    """Two APISIX routes to the stand-in: one sending secret headers (proxy-rewrite), one through
    ai-proxy with a header key and a query key."""
    secrets = "${environments.common.secrets."
    rewrite = {
        "name": "rewrite",
        "uri": "/rewrite",
        "methods": ["POST"],
        "upstream": {"type": "roundrobin", "nodes": {standin: 1}},
        "plugins": {
            "proxy-rewrite": {
                "uri": "/v1/chat/completions",
                "headers": {
                    "x-api-key": secrets + "header_key}",
                    "Authorization": "Bearer " + secrets + "bearer_key}",
                },
            }
        },
    }
    ai = {
        "name": "ai",
        "uri": "/ai",
        "methods": ["POST"],
        "plugins": {
            "ai-proxy": {
                "provider": "openai-compatible",
                "override": {"endpoint": f"http://{standin}/v1/chat/completions"},
                "auth": {
                    "header": {"api-key": secrets + "ai_header_key}"},
                    "query": {"key": secrets + "ai_query_key}"},
                },
            }
        },
    }

    def inference(name: str, route: str) -> dict[str, Any]:
        return {
            "module_type": "inference_endpoint",
            "name": name,
            "config": {
                "model_name": "standin-echo",
                "endpoint_url": "http://127.0.0.1:9/unused",
                "apisix_route": route,
                "apisix_gateway_module": "gateway",
            },
        }

    return {
        "project_id": SCRUB_PROJECT,
        "project_name": "upstream errors quoting route secrets",
        "environment": "development",
        "modules": [
            inference("rewrite", "rewrite"),
            inference("ai", "ai"),
            {
                "module_type": "api_gateway",
                "name": "gateway",
                "config": {"gateway_type": "apisix", "routes": [rewrite, ai]},
            },
        ],
        "environments": {
            "common": {
                "secrets": {
                    "header_key": ROUTE_HEADER_KEY,
                    "bearer_key": ROUTE_BEARER_KEY,
                    "ai_header_key": AI_HEADER_KEY,
                    "ai_query_key": AI_QUERY_KEY,
                }
            },
            "development": {},
        },
        "metadata": {
            "fd2": {"modules": {name: {"auth": {"mode": "none"}} for name in ("rewrite", "ai")}}
        },
    }


@pytest.fixture(scope="module")
def raw_upstream(logs_dir: Path) -> Iterator[Service]:
    port = _free_port()
    argv = [sys.executable, str(RAW_SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
    service = start_service(
        "raw-upstream", argv, port=port, ready_path="/health", log_dir=logs_dir, deadline_s=15
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def fd2_streams(
    tmp_path_factory: pytest.TempPathFactory, standin: Service, raw_upstream: Service
) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("hardening-streams")
    manifests = build_manifest_dir(directory / "manifests", standin.address)
    raw = quick_manifest(raw_upstream.address)
    raw.update(project="raw", timeouts={"connect_s": 2, "read_s": 5, "total_s": 10})
    (manifests / "raw.module.json").write_text(json.dumps(raw, indent=2))
    (manifests / f"{SCRUB_PROJECT}.json").write_text(
        json.dumps(gateway_manifest(standin.address), indent=2)
    )
    service = start_fd2(manifests, directory, name="fd2-streams")
    yield service
    service.stop()


def stream(server: Service, target: bytes, model: str) -> tuple[list[bytes], bytes]:
    """A streamed chat over a raw socket: its events, and its whole body (checked complete)."""
    response = raw_request(server.port, "POST", target, [], chat_body(model, stream=True))
    assert response.status == 200, response
    assert response.complete, "fd2 must end its own response properly (last chunk sent)"
    assert response.header("content-type") == "text/event-stream; charset=utf-8"
    assert_no_leak(response.body)
    return sse_events(response.body), response.body


def last_error(events: list[bytes]) -> dict[str, Any]:
    error = assert_openai_error(events[-1])
    assert b"[DONE]" not in events
    return error


RAW_CHAT = b"/raw/chat/v1/chat/completions"
ACME_CHAT = b"/acme/chat/v1/chat/completions"

# --- L: streams without chunked framing (the raw-socket upstream)


@pytest.mark.parametrize("model", ["raw-reset", "raw-fin"])
def test_an_unframed_stream_cut_mid_answer_ends_with_an_error_event(
    fd2_streams: Service, model: str
) -> None:
    events, _ = stream(fd2_streams, RAW_CHAT, model)
    contents = [json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1]]
    assert contents == ["", "1;", "2;", "3;"]
    error = last_error(events)
    assert error["code"] == "upstream_stream_incomplete"
    assert error["type"] == "upstream_error"


def test_the_sdk_raises_on_an_unframed_stream_that_was_cut(fd2_streams: Service) -> None:
    with openai.OpenAI(
        base_url=f"{fd2_streams.url}/raw/chat/v1", api_key="unused", max_retries=0, timeout=15
    ) as sdk:
        received: list[str] = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in sdk.chat.completions.create(
                model="raw-reset", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                received.append(chunk.choices[0].delta.content or "")  # noqa: PERF401
    assert not isinstance(caught.value, openai.APIConnectionError)
    assert "before its answer was complete" in caught.value.message
    assert received == ["", "1;", "2;", "3;"]


def test_a_whole_unframed_stream_ends_with_done(fd2_streams: Service) -> None:
    events, _ = stream(fd2_streams, RAW_CHAT, "raw-complete")
    assert events[-1] == b"[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "stop"
    assert all(b'"error"' not in event for event in events)


def test_a_whole_unframed_stream_without_done_gets_fd2s_done(fd2_streams: Service) -> None:
    events, body = stream(fd2_streams, RAW_CHAT, "raw-no-done")
    assert events[-1] == b"[DONE]"
    assert body.endswith(b"data: [DONE]\n\n")
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "stop"


def test_a_client_that_does_not_read_for_a_while_gets_every_event_in_order(
    fd2_streams: Service,
) -> None:
    """~6 MB streamed as fast as the upstream can, to a client that reads nothing for 1.5 s
    through a small receive buffer: Granian's channel fills, fd2's relay waits on its `send`
    (holding what arrives, pausing the upstream), then every event goes out, in order."""
    request = (
        b"POST /raw/chat/v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
    )
    body = chat_body("raw-flood", stream=True)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", fd2_streams.port))
        sock.sendall(request % len(body) + body)
        time.sleep(1.5)
        response = read_response(sock)
    assert response.status == 200 and response.complete
    events = sse_events(response.body)
    assert events[-1] == b"[DONE]"
    contents = [json.loads(event)["choices"][0]["delta"].get("content") for event in events[1:-2]]
    assert [content.split(";")[0] for content in contents] == [str(i) for i in range(1, 6001)]
    assert all(content.endswith(";" + "x" * 1000) for content in contents)


# --- L: what is not an event stream is refused; an answer the upstream cut short is an error


@pytest.mark.parametrize(
    ("target", "model"),
    [(RAW_CHAT, "raw-garbage"), (ACME_CHAT, "stream-garbage")],
    ids=["unframed", "chunked"],
)
def test_a_page_sent_as_an_event_stream_is_refused(
    fd2_streams: Service, target: bytes, model: str
) -> None:
    events, body = stream(fd2_streams, target, model)
    assert b"html" not in body.lower()
    assert b"502 Bad Gateway" not in body
    assert len(events) == 1
    assert last_error(events)["code"] == "upstream_not_event_stream"


def test_a_stream_ended_early_by_the_upstream_is_an_error(fd2_streams: Service) -> None:
    events, _ = stream(fd2_streams, ACME_CHAT, "stream-no-finish")
    assert len(events) == 5  # the first chunk, 3 contents, the error
    assert last_error(events)["code"] == "upstream_stream_incomplete"


def test_a_stream_without_done_but_finished_gets_fd2s_done(fd2_streams: Service) -> None:
    events, _ = stream(fd2_streams, ACME_CHAT, "no-done")
    assert events[-1] == b"[DONE]"
    assert events.count(b"[DONE]") == 1


# --- G: no credential fd2 sent upstream comes back


def assert_scrubbed(data: bytes, *secrets: str) -> None:
    for secret in secrets:
        assert secret.encode() not in data, data[:400]
    assert b"***" in data


@pytest.mark.parametrize("model", ["error-key", "error-key-escaped"])
def test_an_upstream_error_quoting_the_modules_key_comes_back_without_it(
    fd2_streams: Service, model: str
) -> None:
    for stream_it in (False, True):
        response = raw_request(
            fd2_streams.port, "POST", ACME_CHAT, [], chat_body(model, stream=stream_it)
        )
        assert response.status == 401, response
        error = assert_openai_error(response.body)
        assert error["code"] == "invalid_api_key"
        assert "Authorization Bearer ***" in error["message"]
        assert_scrubbed(response.body, ACME_KEY)


def test_the_sdk_sees_the_upstream_error_without_the_key(fd2_streams: Service) -> None:
    with openai.OpenAI(
        base_url=f"{fd2_streams.url}/acme/chat/v1", api_key="unused", max_retries=0, timeout=15
    ) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            sdk.chat.completions.create(
                model="error-key", messages=[{"role": "user", "content": "hi"}]
            )
        assert ACME_KEY not in str(caught.value)
        assert "***" in caught.value.message
        with pytest.raises(openai.APIError) as in_stream:
            for _ in sdk.chat.completions.create(
                model="stream-error-key", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                pass
        assert ACME_KEY not in str(in_stream.value)
        assert "Authorization Bearer ***" in in_stream.value.message


def test_an_in_stream_error_quoting_the_key_comes_back_without_it(fd2_streams: Service) -> None:
    events, _ = stream(fd2_streams, ACME_CHAT, "stream-error-key")
    assert len(events) == 4  # the first chunk, 2 contents, the upstream's own error event
    error = assert_openai_error(events[-1])
    assert error["code"] == "invalid_api_key"
    # The first chunk's echo of what the stand-in received is its test aid (see leaks.py).
    assert_scrubbed(events[-1], ACME_KEY)


@pytest.mark.parametrize("stream_it", [False, True], ids=["answer", "stream"])
def test_route_secrets_are_taken_out_of_upstream_errors(
    fd2_streams: Service, stream_it: bool
) -> None:
    for module, secrets in (
        ("rewrite", (ROUTE_HEADER_KEY, ROUTE_BEARER_KEY)),
        ("ai", (AI_HEADER_KEY, AI_QUERY_KEY, "ai-proxy-query-key%2F5e%2Bd%26")),
    ):
        target = f"/{SCRUB_PROJECT}/{module}/v1/chat/completions".encode()
        model = "stream-error-key" if stream_it else "error-key"
        response = raw_request(fd2_streams.port, "POST", target, [], chat_body(model, stream=True))
        quoted = sse_events(response.body)[-1] if stream_it else response.body
        assert response.status == (200 if stream_it else 401), response
        message = assert_openai_error(quoted)["message"]
        assert_scrubbed(quoted, *secrets)
        if module == "rewrite":
            assert "x-api-key ***" in message
            assert "Authorization Bearer ***" in message
        else:
            assert "api-key ***" in message
            assert "query key=***" in message
