"""Bad input fd2 answers itself (issue 19 B, C, D, E, L-Host, header count): a 4xx in OpenAI's
shape with a request id, in bounded time, and an access log line that tells the truth."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from .conftest import Service, build_manifest_dir
from .hardening import start_fd2_with
from .support import assert_openai_error, chat_body, raw_request, read_response, wait_until

BODY_TIMEOUT_S = 1.0
CHAT = b"/acme/chat/v1/chat/completions"


@pytest.fixture(scope="module")
def fd2_logged(tmp_path_factory: pytest.TempPathFactory, standin: Service) -> Iterator[Service]:
    """fd2 with the access log on and a one-second body deadline."""
    directory = tmp_path_factory.mktemp("hardening-requests")
    manifests = build_manifest_dir(directory / "manifests", standin.address)
    service = start_fd2_with(
        manifests,
        directory,
        "--access-log",
        "--body-timeout",
        str(BODY_TIMEOUT_S),
        "--max-headers",
        "40",
        name="fd2-requests",
    )
    yield service
    service.stop()


def send_raw(port: int, data: bytes, timeout: float = 10.0) -> tuple[float, object]:
    """Sends `data` as it is; returns the seconds until the answer and the parsed answer."""
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        response = read_response(sock)
    return time.monotonic() - began, response


def access_line(server: Service, request_id: str) -> str:
    def find() -> str | None:
        for line in server.stderr_path.read_text(errors="replace").splitlines():
            if "fd2.access" in line and request_id in line:
                return line
        return None

    return wait_until(find, timeout=5, what=f"access log line of {request_id}")


def head(target: bytes, *lines: bytes) -> bytes:
    return b"\r\n".join([b"POST " + target + b" HTTP/1.1", b"host: x", *lines, b"", b""])


# --- B: a body that never starts is bounded by --body-timeout (HTTP/1.1 here, HTTP/2 in
# test_hardening_http2.py)


@pytest.mark.parametrize(
    "announce",
    [b"content-length: 100", b"transfer-encoding: chunked"],
    ids=["content-length", "chunked"],
)
def test_a_body_that_never_starts_gets_408_in_time(fd2_logged: Service, announce: bytes) -> None:
    seconds, response = send_raw(
        fd2_logged.port, head(CHAT, b"x-request-id: never-starts", announce)
    )
    assert response.status == 408, response
    assert seconds < BODY_TIMEOUT_S + 2
    assert assert_openai_error(response.body)["code"] == "request_timeout"
    assert response.header("x-request-id") == "never-starts"


# --- C: malformed chunked bodies are a clean 400, and the access log records it


MALFORMED = {
    "not-hex": b"zz\r\nabc\r\n0\r\n\r\n",
    "negative": b"-5\r\nabc\r\n0\r\n\r\n",
    "overflowing": b"ffffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "huge-extension": b"3;" + b"e" * 65536 + b"\r\nabc\r\n0\r\n\r\n",
    "no-crlf-after-data": b"3\r\nabcde\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_chunked_bodies_get_400(fd2_logged: Service, name: str) -> None:
    rid = f"chunked-{name}"
    data = head(CHAT, b"x-request-id: " + rid.encode(), b"transfer-encoding: chunked")
    _, response = send_raw(fd2_logged.port, data + MALFORMED[name])
    assert response.status == 400, response
    assert assert_openai_error(response.body)["code"] == "invalid_request_body"
    assert response.header("x-request-id") == rid
    assert " 400 " in access_line(fd2_logged, rid)


# --- D: deeply nested messages are a 400 where fd2 counts tokens


@pytest.mark.parametrize("where", ["content", "tool_calls"])
def test_deeply_nested_messages_are_a_400(fd2_logged: Service, where: str) -> None:
    nested: object = "x"
    for _ in range(500):
        nested = [nested]
    message: dict[str, object] = {"role": "assistant" if where == "tool_calls" else "user"}
    message[where] = nested
    body = json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [message],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    # quick/chat forwards the client's bytes as they are (no defaults to apply): only the token
    # count for the usage chunk has to write the nested value.
    target = b"/quick/chat/v1/chat/completions"
    response = raw_request(
        fd2_logged.port, "POST", target, [(b"content-type", b"application/json")], body
    )
    assert response.status == 400, response.body[:300]
    assert "nested too deeply to be counted" in assert_openai_error(response.body)["message"]


# --- E: the access log cannot be forged through the path


def test_the_access_log_writes_the_raw_path_escaped(fd2_logged: Service) -> None:
    rid = "forged-path"
    target = b"/acme/chat%0a2026-01-01%20INFO%20fd2.access%20fake%00/v1/models"
    response = raw_request(fd2_logged.port, "GET", target, [(b"x-request-id", rid.encode())])
    assert response.status == 400
    line = access_line(fd2_logged, rid)
    assert "/acme/chat%0a2026-01-01%20INFO%20fd2.access%20fake%00/v1/models 400" in line
    log = fd2_logged.stderr_path.read_bytes()
    assert b"\x00" not in log
    assert log.count(b"fd2.access fake") == 0


# --- L (Host): exactly one Host header in HTTP/1.1


@pytest.mark.parametrize(
    "hosts",
    [[], [b"host: a"] * 2, [b"host: a", b"host: b"], [b"host:"]],
    ids=["none", "twice-same", "two-different", "empty"],
)
def test_http11_needs_exactly_one_host(fd2_logged: Service, hosts: list[bytes]) -> None:
    data = b"\r\n".join([b"GET /acme/chat/v1/models HTTP/1.1", *hosts, b"connection: close"])
    _, response = send_raw(fd2_logged.port, data + b"\r\n\r\n")
    assert response.status == 400, response
    error = assert_openai_error(response.body)
    assert error["param"] == "Host"
    assert response.header("x-request-id")


def test_http10_without_host_is_served(fd2_logged: Service) -> None:
    _, response = send_raw(fd2_logged.port, b"GET /acme/chat/v1/models HTTP/1.0\r\n\r\n")
    assert response.status == 200


# --- header count: fd2's own limit (HTTP/2 has no other) and the server's for HTTP/1.1


def test_too_many_headers_get_431(fd2_logged: Service) -> None:
    extra = [(b"x-filler-%d" % i, b"1") for i in range(45)]
    response = raw_request(fd2_logged.port, "GET", b"/acme/chat/v1/models", extra)
    assert response.status == 431
    assert assert_openai_error(response.body)["code"] == "request_headers_too_large"
    # Past 100 fields the HTTP/1.1 server itself refuses, before fd2 sees the request.
    many = [(b"x-filler-%d" % i, b"1") for i in range(150)]
    assert raw_request(fd2_logged.port, "GET", b"/acme/chat/v1/models", many).status == 431


def test_normal_requests_still_work(fd2_logged: Service) -> None:
    response = raw_request(
        fd2_logged.port, "POST", CHAT, [(b"content-type", b"application/json")], chat_body()
    )
    assert response.status == 200, response.body[:300]
