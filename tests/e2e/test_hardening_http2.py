"""HTTP/2 when it is switched on (`--http auto`, issue 19 B and K): header lists are bounded like
HTTP/1.1 heads (431, or the stream refused), held-open streams cost bounded memory, and a body
that never starts is timed out as over HTTP/1.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from .conftest import Service, build_manifest_dir
from .hardening import rss_kib, start_fd2_with, worker_pids
from .support import assert_openai_error

BODY_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def fd2_h2(tmp_path_factory: pytest.TempPathFactory, standin: Service) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("hardening-h2")
    manifests = build_manifest_dir(directory / "manifests", standin.address)
    service = start_fd2_with(
        manifests,
        directory,
        "--http",
        "auto",
        "--body-timeout",
        str(BODY_TIMEOUT_S),
        name="fd2-h2",
    )
    yield service
    service.stop()


@dataclass
class Outcome:
    status: int | None = None
    body: bytes = b""
    reset: bool = False
    ended: bool = False
    headers: dict[bytes, bytes] = field(default_factory=dict)


class H2Client:
    """HTTP/2 with prior knowledge over one socket; sends what it is told, headers unchecked."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config)
        encode = self.conn.encoder.encode
        # Plain literals: pure-Python Huffman coding of megabytes would take the test's time.
        self.conn.encoder.encode = lambda headers, huffman=True: encode(headers, huffman=False)  # type: ignore[method-assign]
        self.conn.initiate_connection()
        self.outcomes: dict[int, Outcome] = {}
        self.closed = False
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                # The server closed the connection before taking all of it: a refusal too.
                self.closed = True

    def start(self, method: str, path: str, extra: list[tuple[bytes, bytes]], end: bool) -> int:
        stream = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":scheme", b"http"),
            (b":authority", b"127.0.0.1"),
            *extra,
        ]
        self.conn.send_headers(stream, headers, end_stream=end)
        self.outcomes[stream] = Outcome()
        try:
            self._flush()
        except OSError:
            self.closed = True
        return stream

    def wait(self, streams: list[int], timeout: float) -> None:
        """Reads until each stream has ended or been reset, or the connection closed."""
        deadline = time.monotonic() + timeout
        while not self.closed and not all(
            self.outcomes[s].ended or self.outcomes[s].reset for s in streams
        ):
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return
            for event in self.conn.receive_data(data):
                self._on(event)
            self._flush()

    def _on(self, event: h2.events.Event) -> None:
        stream = getattr(event, "stream_id", None)
        outcome = self.outcomes.get(stream) if stream else None
        if isinstance(event, h2.events.ResponseReceived) and outcome:
            outcome.headers = dict(event.headers)  # type: ignore[arg-type]
            outcome.status = int(outcome.headers[b":status"])
        elif isinstance(event, h2.events.DataReceived) and outcome:
            outcome.body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded) and outcome:
            outcome.ended = True
        elif isinstance(event, h2.events.StreamReset) and outcome:
            outcome.reset = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True

    def close(self) -> None:
        self.sock.close()


def refused(outcome: Outcome, closed: bool) -> bool:
    """431 from the server, or the stream (or connection) refused: never served."""
    return outcome.status == 431 or outcome.reset or (closed and outcome.status is None)


@pytest.mark.parametrize(
    "extra",
    [
        [(b"x-big", b"v" * (1 << 20))],
        [(b"x-big", b"v" * (4 << 20))],
        [(b"x-h-%d" % i, b"1") for i in range(5000)],
    ],
    ids=["1MiB-value", "4MiB-value", "5000-headers"],
)
def test_oversized_header_lists_are_refused(fd2_h2: Service, extra: list[tuple[bytes, bytes]]):
    client = H2Client(fd2_h2.port)
    try:
        stream = client.start("GET", "/acme/chat/v1/models", extra, end=True)
        client.wait([stream], timeout=10)
        outcome = client.outcomes[stream]
        assert refused(outcome, client.closed), outcome
    finally:
        client.close()


def test_more_header_fields_than_allowed_get_431_from_fd2(fd2_h2: Service) -> None:
    client = H2Client(fd2_h2.port)
    try:
        extra = [(b"x-h-%d" % i, b"1") for i in range(150)]  # small: under the byte limit
        stream = client.start("GET", "/acme/chat/v1/models", extra, end=True)
        client.wait([stream], timeout=10)
        outcome = client.outcomes[stream]
        assert outcome.status == 431, outcome
        assert assert_openai_error(outcome.body)["code"] == "request_headers_too_large"
    finally:
        client.close()


def test_held_open_streams_with_big_headers_cost_bounded_memory(fd2_h2: Service) -> None:
    worker = worker_pids(fd2_h2.proc.pid)[0]
    for _ in range(3):  # first-request allocations (metrics files, caches) are not what is measured
        httpx.get(f"{fd2_h2.url}/acme/chat/v1/models", timeout=10)
    before = rss_kib(worker)
    client = H2Client(fd2_h2.port)
    try:
        # POSTs whose bodies never come: a stream the server accepted would stay open.
        streams = [
            client.start(
                "POST", "/acme/chat/v1/chat/completions", [(b"x-big", b"v" * (4 << 20))], False
            )
            for _ in range(10)
        ]
        time.sleep(BODY_TIMEOUT_S / 2)  # measured while a served stream would still wait
        grown_mib = (rss_kib(worker) - before) / 1024
        client.wait(streams, timeout=5)
        for stream in streams:
            assert refused(client.outcomes[stream], client.closed), client.outcomes[stream]
        # Held, the ten header blocks alone would be 40 MiB (69 MiB measured before the limit).
        assert grown_mib < 24, f"worker grew {grown_mib:.0f} MiB"
    finally:
        client.close()


def test_a_body_that_never_starts_gets_408_over_http2(fd2_h2: Service) -> None:
    client = H2Client(fd2_h2.port)
    try:
        began = time.monotonic()
        stream = client.start(
            "POST",
            "/acme/chat/v1/chat/completions",
            [(b"content-type", b"application/json"), (b"content-length", b"100")],
            end=False,
        )
        client.wait([stream], timeout=BODY_TIMEOUT_S + 5)
        outcome = client.outcomes[stream]
        assert outcome.status == 408, outcome
        assert time.monotonic() - began < BODY_TIMEOUT_S + 2
        assert assert_openai_error(outcome.body)["code"] == "request_timeout"
    finally:
        client.close()


def test_a_normal_request_over_http2(fd2_h2: Service) -> None:
    client = H2Client(fd2_h2.port)
    try:
        stream = client.start("GET", "/acme/chat/v1/models", [], end=True)
        client.wait([stream], timeout=10)
        assert client.outcomes[stream].status == 200
    finally:
        client.close()
