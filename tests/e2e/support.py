"""Helpers shared by the end-to-end tests: raw HTTP over a socket, polling, error-shape checks."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .leaks import LEAKS

REPO = Path(__file__).resolve().parents[2]
SECRETS = (b"test-acme-key", b"test-billing-key")
LEAK_MARKERS = (b"Traceback", b'File "', *SECRETS)
ACME_PROMPT = "You are ACME's helpful assistant."

_STANDIN_ECHO = re.compile(rb'\\?"authorization\\?":\\?"Bearer test-(?:acme|billing)-key\\?"')

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.02, what: str = ""
) -> T:
    """Calls `probe` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or probe}: {last!r}"
            )
        time.sleep(interval)


def assert_no_leak(body: bytes | str) -> None:
    """No stack trace and no upstream credential in anything a client receives.

    The stand-in's own echo of the Authorization header it received (its test aid, relayed as
    upstream content) is taken out first.
    """
    data = body.encode() if isinstance(body, str) else body
    data = _STANDIN_ECHO.sub(b"", data)
    for marker in LEAK_MARKERS:
        assert marker not in data, f"response body leaks {marker!r}: {data[:500]!r}"


def assert_openai_error(body: bytes | str, *, status: int | None = None) -> dict[str, Any]:
    """The body is OpenAI's error shape; returns the inner `error` object."""
    assert_no_leak(body)
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise AssertionError(f"error body is not JSON (status {status}): {body[:300]!r}") from exc
    assert isinstance(decoded, dict), decoded
    assert set(decoded) == {"error"}, decoded
    error = decoded["error"]
    assert isinstance(error, dict), decoded
    assert {"message", "type", "code", "param"} <= set(error), error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["type"], str), error
    assert error["type"], error
    return error


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool = True
    raw_head: bytes = field(default=b"", repr=False)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]


def raw_request(
    port: int,
    method: str,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    *,
    timeout: float = 15.0,
    content_length: int | None = None,
) -> RawResponse:
    """Sends one request byte for byte (no URL normalisation) and reads the whole answer.

    `content_length` overrides the header (to announce more than is sent); by default it is the
    body's length when there is a body.
    """
    head = [b"%s %s HTTP/1.1" % (method.encode(), target), b"host: 127.0.0.1:%d" % port]
    head += [b"%s: %s" % (key, value) for key, value in headers]
    if content_length is None and (body or method in ("POST", "PUT")):
        content_length = len(body)
    if content_length is not None:
        head.append(b"content-length: %d" % content_length)
    head.append(b"connection: close")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        return read_response(sock)


def read_response(sock: socket.socket) -> RawResponse:
    port = _peer_port(sock)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed before a full response head: {buffer!r}")
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = []
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        headers.append((key.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
    response = RawResponse(status, headers, b"", raw_head=head)
    length = response.header("content-length")
    if response.header("transfer-encoding") == "chunked":
        response.body, response.complete = _read_chunked(sock, rest)
    elif length is not None:
        rest, response.complete = _read_at_least(sock, rest, int(length))
        response.body = rest[: int(length)]
    else:
        while data := sock.recv(65536):
            rest += data
        response.body = rest
    LEAKS.record(port, f"raw {lines[0][:60]!r}", head + b"\r\n\r\n" + response.body)
    return response


def _peer_port(sock: socket.socket) -> int | None:
    """Which server answers (for the leak check); None once the peer has reset the connection."""
    try:
        return int(sock.getpeername()[1])
    except OSError:
        return None


def _read_at_least(sock: socket.socket, buffer: bytes, size: int) -> tuple[bytes, bool]:
    while len(buffer) < size:
        data = sock.recv(65536)
        if not data:
            return buffer, False
        buffer += data
    return buffer, True


def _read_chunked(sock: socket.socket, buffer: bytes) -> tuple[bytes, bool]:
    body = b""
    while True:
        while b"\r\n" not in buffer:
            data = sock.recv(65536)
            if not data:
                return body, False
            buffer += data
        size_line, buffer = buffer.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        buffer, complete = _read_at_least(sock, buffer, size + 2)
        if not complete:
            return body + buffer[:size], False
        if size == 0:
            return body, True
        body += buffer[:size]
        buffer = buffer[size + 2 :]


def sse_events(body: bytes) -> list[bytes]:
    """The `data:` payloads of an SSE body, in order."""
    events = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].lstrip() for line in block.split(b"\n") if line.startswith(b"data:")]
        if data:
            events.append(b"\n".join(data))
    return events


def chat_body(model: str = "standin-echo", content: str = "hello", **extra: Any) -> bytes:
    return json.dumps(
        {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    ).encode()
