"""Shutdown with work still running (issue 19 M): at `--shutdown-timeout` a stream ends with an
error event and a waiting call gets 503, both complete answers; fd2 logs its deadline; while it
drains, `/healthz` says so to a request that still reaches it (an HTTP/2 stream)."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Service, StandinStats, build_manifest_dir
from .hardening import start_fd2_with
from .support import assert_openai_error, chat_body, sse_events, wait_until
from .test_hardening_http2 import H2Client

SHUTDOWN_S = 2.0
CHAT = "/acme/chat/v1/chat/completions"


@pytest.fixture
def draining_fd2(tmp_path: Path, standin: Service) -> Iterator[Service]:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    service = start_fd2_with(
        manifests,
        tmp_path,
        "--shutdown-timeout",
        str(SHUTDOWN_S),
        "--http",
        "auto",
        name="fd2-drain",
    )
    yield service
    service.stop()


class Stream(threading.Thread):
    """A streamed chat read to its end in a thread: the events and whether it was complete."""

    def __init__(self, server: Service, model: str) -> None:
        super().__init__(daemon=True)
        self.server, self.model = server, model
        self.first = threading.Event()
        self.body = b""
        self.complete = False
        self.ended_at = 0.0

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            try:
                with client.stream("POST", CHAT, content=chat_body(self.model, stream=True)) as r:
                    for chunk in r.iter_raw():
                        self.body += chunk
                        self.first.set()
                self.complete = True  # httpx raises on a chunked body cut short
            except httpx.HTTPError:
                pass
        self.ended_at = time.monotonic()


class Call(threading.Thread):
    def __init__(self, server: Service, model: str) -> None:
        super().__init__(daemon=True)
        self.server, self.model = server, model
        self.response: httpx.Response | None = None
        self.ended_at = 0.0

    def run(self) -> None:
        with (
            httpx.Client(base_url=self.server.url, timeout=30) as client,
            contextlib.suppress(httpx.HTTPError),  # no answer: the response stays None
        ):
            self.response = client.post(CHAT, content=chat_body(self.model))
        self.ended_at = time.monotonic()


def test_work_running_at_the_deadline_ends_with_an_answer(
    draining_fd2: Service, standin_stats: StandinStats
) -> None:
    standin_stats.settle()
    stream = Stream(draining_fd2, "chunks-300-gap-100")  # 30 s of events
    call = Call(draining_fd2, "slow-20000")  # answers after 20 s
    stream.start()
    call.start()
    assert stream.first.wait(10), "the stream did not start"
    wait_until(lambda: standin_stats.get()["started"] >= 2, timeout=5, what="both requests")
    signalled = time.monotonic()
    draining_fd2.signal(signal.SIGTERM)
    stream.join(15)
    call.join(15)

    assert stream.complete, f"the stream was cut: {stream.body[-300:]!r}"
    events = sse_events(stream.body)
    assert b"[DONE]" not in events
    error = assert_openai_error(events[-1])
    assert error["code"] == "gateway_shutting_down"
    assert len(events) > 2
    assert SHUTDOWN_S - 0.5 < stream.ended_at - signalled < SHUTDOWN_S + 2

    assert call.response is not None, "the waiting call got no answer"
    assert call.response.status_code == 503
    assert assert_openai_error(call.response.content)["code"] == "gateway_shutting_down"
    assert call.response.headers["x-request-id"]
    assert call.ended_at - signalled < SHUTDOWN_S + 2

    assert draining_fd2.wait_exit(10) is not None, "fd2 did not exit after its deadline"
    log = draining_fd2.stderr_path.read_text()
    assert "still running at the deadline" in log
    assert "Killing worker" not in log  # the worker ended by itself, before Granian's kill
    # The upstream saw both requests end (their connections closed), none completed.
    stats = wait_until(
        lambda: (s := standin_stats.get())["open_streams"] == 0 and s, timeout=5, what="stats"
    )
    assert stats["completed"] == 0


def test_work_that_finishes_in_time_is_left_alone(draining_fd2: Service) -> None:
    stream = Stream(draining_fd2, "chunks-10-gap-50")  # half a second
    stream.start()
    assert stream.first.wait(10)
    draining_fd2.signal(signal.SIGTERM)
    stream.join(10)
    assert stream.complete
    events = sse_events(stream.body)
    assert events[-1] == b"[DONE]"
    assert all(b'"error"' not in event for event in events)
    assert draining_fd2.wait_exit(10) is not None
    assert "still running at the deadline" not in draining_fd2.stderr_path.read_text()


def test_healthz_says_draining_to_a_request_that_still_arrives(draining_fd2: Service) -> None:
    client = H2Client(draining_fd2.port)
    try:
        body = chat_body("chunks-300-gap-100", stream=True)
        stream = client.start(
            "POST",
            CHAT,
            [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            end=False,
        )
        client.conn.send_data(stream, body, end_stream=True)
        client.sock.sendall(client.conn.data_to_send())
        client.wait([stream], timeout=1.0)
        assert client.outcomes[stream].status == 200
        draining_fd2.signal(signal.SIGTERM)
        time.sleep(0.5)
        # A stream opened on the connection before the client has read the server's GOAWAY
        # (the server's PING, which would complete the GOAWAY, goes unanswered meanwhile).
        client.start("GET", "/healthz", [], end=True)
        received = b""
        deadline = time.monotonic() + 5
        client.sock.settimeout(0.2)
        while b"status" not in received and time.monotonic() < deadline:
            try:
                received += client.sock.recv(65536)
            except TimeoutError:
                continue
        assert json.dumps({"status": "draining"}, separators=(",", ":")).encode() in received
    finally:
        client.close()
