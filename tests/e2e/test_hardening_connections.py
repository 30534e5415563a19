"""Connections that send nothing, or too little too slowly (issue 19 A, M): every connection is
timed out, a flood of them leaves /healthz and real requests answering, and at the connection cap
a waiting client is served as soon as held connections time out."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx

from .conftest import Service, build_manifest_dir, free_port
from .hardening import closed_by_peer, open_sockets, raise_fd_limit, start_fd2_with
from .support import chat_body

FLOOD = 10_000
PARTIAL_HEAD = b"POST /acme/chat/v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: "


def timed_get(url: str, timeout: float = 10.0) -> tuple[int, float]:
    began = time.monotonic()
    with httpx.Client(timeout=timeout) as client:
        status = client.get(url).status_code
    return status, time.monotonic() - began


def test_ten_thousand_idle_and_slowloris_connections_leave_fd2_answering(
    tmp_path: Path, standin: Service
) -> None:
    raise_fd_limit(FLOOD + 2048)
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    server = start_fd2_with(manifests, tmp_path, name="fd2-flood")
    try:
        half = FLOOD // 2
        with (
            open_sockets(server.port, half) as idle,
            open_sockets(server.port, half, PARTIAL_HEAD) as slow,
        ):
            assert len(idle) + len(slow) == FLOOD
            worst = 0.0
            for _ in range(3):  # the slow ones go on dripping a byte a second
                for sock in slow:
                    sock.send(b"a")
                status, seconds = timed_get(server.url + "/healthz")
                assert status == 200
                worst = max(worst, seconds)
                with httpx.Client(timeout=10) as client:
                    began = time.monotonic()
                    answer = client.post(
                        server.url + "/acme/chat/v1/chat/completions",
                        content=chat_body(),
                        headers={"content-type": "application/json"},
                    )
                    assert answer.status_code == 200
                    worst = max(worst, time.monotonic() - began)
                time.sleep(1)
            assert worst < 2.0, f"slowest answer under the flood: {worst:.2f} s"
            print(
                f"\n{FLOOD} held connections: slowest /healthz or chat answer {worst * 1000:.0f} ms"
            )
    finally:
        server.stop()


def test_every_connection_is_timed_out(tmp_path: Path, standin: Service) -> None:
    """Connect-only, a head that never ends, a kept-alive connection left idle: each is closed
    by fd2 once --header-timeout has passed."""
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    server = start_fd2_with(manifests, tmp_path, "--header-timeout", "1", name="fd2-timeouts")
    try:
        with (
            open_sockets(server.port, 3) as connect_only,
            open_sockets(server.port, 3, PARTIAL_HEAD) as partial,
            open_sockets(server.port, 1, b"P") as half_preface,
            open_sockets(server.port, 1, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n") as kept,
        ):
            began = time.monotonic()
            for sock in [*connect_only, *partial, *half_preface]:
                assert closed_by_peer(sock, timeout=4), "a connection outlived --header-timeout"
            # the kept-alive one got its answer, then was closed for idling
            kept[0].settimeout(4)
            data = b""
            while chunk := kept[0].recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")
            assert time.monotonic() - began < 5
    finally:
        server.stop()


def test_at_the_connection_cap_a_waiting_client_is_served_when_held_ones_time_out(
    tmp_path: Path, standin: Service
) -> None:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    server = start_fd2_with(
        manifests,
        tmp_path,
        "--max-connections",
        "64",
        "--header-timeout",
        "2",
        name="fd2-cap",
    )
    try:
        with open_sockets(server.port, 64):
            began = time.monotonic()
            status, seconds = timed_get(server.url + "/healthz", timeout=10)
            assert status == 200
            # Granian stops accepting at the cap; the held connections are closed by the header
            # timeout, and the waiting one is served then.
            assert 1.0 < seconds < 5.0, seconds
            assert time.monotonic() - began < 6
        assert timed_get(server.url + "/healthz")[1] < 1.0
    finally:
        server.stop()


def test_sigterm_closes_idle_keep_alive_connections_and_finishes_requests(
    tmp_path: Path, standin: Service
) -> None:
    """What docs/operations.md says of draining: an idle kept-alive connection is closed at once
    (no answer is owed on it); a request in flight gets its whole answer."""
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    server = start_fd2_with(manifests, tmp_path, name="fd2-drain")
    try:
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle,
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as busy,
        ):
            idle.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")
            body = chat_body(model="slow-1500")
            busy.sendall(
                b"POST /acme/chat/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            began = time.monotonic()
            assert closed_by_peer(idle, timeout=3)
            assert time.monotonic() - began < 2
            answer = b""
            while chunk := busy.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert b"connection: close" in answer.lower()
        assert server.wait_exit(15) is not None
    finally:
        server.stop()


def test_the_health_port_answers_while_the_cap_is_reached(tmp_path: Path, standin: Service) -> None:
    """`--health-port`: a liveness probe is not queued behind a flood of the serving port."""
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    health = free_port()
    server = start_fd2_with(
        manifests,
        tmp_path,
        "--max-connections",
        "32",
        "--health-port",
        str(health),
        name="fd2-health-port",
    )
    try:
        with open_sockets(server.port, 200):  # the cap is full, the rest wait in the backlog
            slowest = 0.0
            for _ in range(5):
                status, seconds = timed_get(f"http://127.0.0.1:{health}/healthz")
                assert status == 200
                slowest = max(slowest, seconds)
            assert slowest < 0.5, slowest
            print(f"\nhealth port at the cap: slowest of 5 answers {slowest * 1000:.1f} ms")
            with httpx.Client(timeout=2) as client:
                assert client.get(f"http://127.0.0.1:{health}/other").status_code == 404
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as busy,
            httpx.Client(timeout=2) as client,
        ):
            body = chat_body(model="slow-2000")
            busy.sendall(
                b"POST /acme/chat/v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            # draining: the serving port refuses new connections, the health port (liveness)
            # answers until the worker has finished
            time.sleep(0.3)
            assert client.get(f"http://127.0.0.1:{health}/healthz").status_code == 200
            assert busy.recv(65536).startswith(b"HTTP/1.1 200")
        assert server.wait_exit(15) is not None
    finally:
        server.stop()
