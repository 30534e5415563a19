"""Operator-facing behaviour: access log lines, stalled request bodies."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Service, build_manifest_dir, fd2_argv, fd2_env, free_port, start_service
from .support import assert_openai_error, read_response, wait_until


@pytest.fixture
def tuned_fd2(tmp_path: Path, standin: Service) -> Iterator[Service]:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    port = free_port()
    service = start_service(
        "fd2-tuned",
        fd2_argv(
            "serve",
            "--port",
            str(port),
            "--manifests",
            str(manifests),
            "--access-log",
            "--body-timeout",
            "1",
        ),
        port=port,
        ready_path="/healthz",
        log_dir=tmp_path,
        env=fd2_env(),
    )
    yield service
    service.stop()


def test_access_log_has_one_line_per_request(tuned_fd2: Service) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    ok = httpx.post(
        f"{tuned_fd2.url}/acme/chat/v1/chat/completions",
        json=body,
        headers={"x-request-id": "access-log-1"},
        timeout=10,
    )
    assert ok.status_code == 200
    missing = httpx.get(
        f"{tuned_fd2.url}/nosuch/chat/v1/models", headers={"x-request-id": "access-log-2"}
    )
    assert missing.status_code == 404
    wait_until(lambda: "access-log-2" in tuned_fd2.output(), timeout=5, what="the access log line")
    lines = [line for line in tuned_fd2.output().splitlines() if "fd2.access" in line]
    assert any("access-log-1 POST /acme/chat/v1/chat/completions 200 " in line for line in lines)
    assert any("access-log-2 GET /nosuch/chat/v1/models 404 " in line for line in lines)
    assert "test-acme-key" not in tuned_fd2.output()


def test_a_stalled_body_gets_408_and_frees_the_request(tuned_fd2: Service) -> None:
    head = (
        b"POST /acme/chat/v1/chat/completions HTTP/1.1\r\n"
        b"host: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", tuned_fd2.port), timeout=10) as sock:
        sock.sendall(head + b'{"messages": [')  # then nothing more
        began = time.monotonic()
        response = read_response(sock)
    assert response.status == 408
    assert time.monotonic() - began < 5
    error = assert_openai_error(response.body)
    assert error["code"] == "request_timeout"
    assert response.header("x-request-id")
