"""The passthrough relays' guarantees hold for a translated provider (Azure here, the relays are
the same for all): a client that leaves ends the provider call, and at the shutdown deadline a
stream ends with an error event and a waiting call gets a 503."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.conftest import Service
from e2e.hardening import start_fd2_with
from e2e.support import assert_openai_error, sse_events, wait_until

from .conftest import PROJECT, Replay, manifest
from .test_conformance import _transcript

CHAT = f"/{PROJECT}/azure/v1/chat/completions"
SHUTDOWN_S = 2.0


def _slow(scenario: str, **response: Any) -> dict[str, Any]:
    transcript = _transcript("azure", scenario)
    assert transcript is not None
    transcript["response"].update(response)
    return transcript


def _request(scenario: str) -> bytes:
    transcript = _transcript("azure", scenario)
    assert transcript is not None
    return json.dumps({"model": "gpt-4o-prod", **transcript["request"]["json"]}).encode()


def test_a_client_that_leaves_ends_the_provider_stream(
    conformance_fd2: Service, replayer: Replay
) -> None:
    replayer.load(_slow("stream", gap_s=0.05))  # ~10 s of pieces
    with (
        httpx.Client(base_url=conformance_fd2.url, timeout=10) as client,
        client.stream("POST", CHAT, content=_request("stream")) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_raw())
        assert first.startswith(b"data: {")
    started = time.monotonic()
    result = wait_until(
        lambda: (r := replayer.result())["gone"] == 1 and r, timeout=5, what="the call ended"
    )
    assert result["completed"] == 0
    assert time.monotonic() - started < 5


@pytest.fixture
def draining_fd2(tmp_path: Path, replay: Service) -> Iterator[Service]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "conformance.json").write_text(json.dumps(manifest(replay.address)))
    service = start_fd2_with(
        manifests, tmp_path, "--shutdown-timeout", str(SHUTDOWN_S), name="fd2-drain-translated"
    )
    yield service
    service.stop()


class _Stream(threading.Thread):
    def __init__(self, server: Service) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.first = threading.Event()
        self.body = b""
        self.complete = False

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            try:
                with client.stream("POST", CHAT, content=_request("stream")) as response:
                    for chunk in response.iter_raw():
                        self.body += chunk
                        self.first.set()
                self.complete = True
            except httpx.HTTPError:
                pass


def test_the_shutdown_deadline_ends_a_translated_stream_with_an_error_event(
    draining_fd2: Service, replayer: Replay
) -> None:
    replayer.load(_slow("stream", gap_s=0.1))  # ~20 s of pieces
    stream = _Stream(draining_fd2)
    stream.start()
    assert stream.first.wait(10), "the stream did not start"
    signalled = time.monotonic()
    draining_fd2.signal(signal.SIGTERM)
    stream.join(15)
    assert stream.complete, f"the stream was cut: {stream.body[-300:]!r}"
    events = sse_events(stream.body)
    assert b"[DONE]" not in events
    assert assert_openai_error(events[-1])["code"] == "gateway_shutting_down"
    assert time.monotonic() - signalled < SHUTDOWN_S + 3
    assert draining_fd2.wait_exit(10) is not None


def test_the_shutdown_deadline_answers_a_waiting_translated_call_503(
    draining_fd2: Service, replayer: Replay
) -> None:
    replayer.load(_slow("plain", delay_s=20))
    answer: list[httpx.Response] = []

    def call() -> None:
        with (
            httpx.Client(base_url=draining_fd2.url, timeout=30) as client,
            contextlib.suppress(httpx.HTTPError),
        ):
            answer.append(client.post(CHAT, content=_request("plain")))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    wait_until(lambda: replayer.result()["requests"] == 1, timeout=5, what="the call")
    draining_fd2.signal(signal.SIGTERM)
    thread.join(15)
    assert answer, "the waiting call got no answer"
    assert answer[0].status_code == 503
    assert assert_openai_error(answer[0].content)["code"] == "gateway_shutting_down"


def test_a_stream_request_answered_without_a_stream_is_a_502(
    conformance_fd2: Service, replayer: Replay
) -> None:
    plain = _transcript("azure", "plain")
    assert plain is not None
    answer = {"json": plain["response"]["json"], "headers": [["content-type", "application/json"]]}
    transcript = _slow("stream", **answer)
    del transcript["response"]["events"]
    replayer.load(transcript)
    response = httpx.post(conformance_fd2.url + CHAT, content=_request("stream"), timeout=10)
    assert response.status_code == 502
    assert assert_openai_error(response.content)["code"] == "upstream_untranslatable"


def test_an_untranslatable_event_ends_the_stream_with_an_error_event(
    conformance_fd2: Service, replayer: Replay
) -> None:
    transcript = _slow("stream")
    events = transcript["response"]["events"]
    events.insert(3, {"data": "<html>not an event</html>"})
    replayer.load(transcript)
    with httpx.Client(base_url=conformance_fd2.url, timeout=10) as client:
        body = client.post(CHAT, content=_request("stream")).content
    received = sse_events(body)
    assert len(received) > 1
    assert b"[DONE]" not in received
    assert assert_openai_error(received[-1])["code"] == "upstream_untranslatable"


def test_an_untranslatable_answer_is_a_502(conformance_fd2: Service, replayer: Replay) -> None:
    transcript = _slow("plain", body="<html>502 Bad Gateway</html>")
    del transcript["response"]["json"]
    replayer.load(transcript)
    response = httpx.post(conformance_fd2.url + CHAT, content=_request("plain"), timeout=10)
    assert response.status_code == 502
    error = assert_openai_error(response.content)
    assert error["code"] == "upstream_untranslatable"
    assert "html" not in error["message"].lower()
