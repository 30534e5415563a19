"""Helpers of the hardening tests (issue 19): an fd2 with chosen flags, raw sockets in bulk."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .conftest import Service, fd2_argv, fd2_env, free_port, start_service


def start_fd2_with(
    manifests: Path,
    log_dir: Path,
    *flags: str,
    name: str = "fd2-hardening",
    env: dict[str, str] | None = None,
) -> Service:
    """fd2 on the given manifests with extra `fd2 serve` flags (one worker unless told)."""
    port = free_port()
    argv = fd2_argv(
        "serve",
        "--port",
        str(port),
        "--manifests",
        str(manifests),
        "--default-env",
        "development",
        *flags,
    )
    full_env = fd2_env()
    full_env.update(env or {})
    return start_service(
        name, argv, port=port, ready_path="/healthz", log_dir=log_dir, env=full_env
    )


def raise_fd_limit(wanted: int) -> None:
    """Lets this test process hold `wanted` sockets (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= wanted, "ulimit -n too low"


@contextlib.contextmanager
def open_sockets(port: int, count: int, first_bytes: bytes = b"") -> Iterator[list[socket.socket]]:
    """`count` connections to fd2, each having sent `first_bytes`, closed at the end."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.settimeout(10)
            sock.connect(("127.0.0.1", port))
            if first_bytes:
                sock.sendall(first_bytes)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True once the server has closed `sock` (EOF or reset), False if it is still open."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def worker_pids(parent: int) -> list[int]:
    """The live child processes of `parent` (Granian's workers)."""
    children: list[int] = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(pid) for pid in (task / "children").read_text().split()]
    return [pid for pid in children if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_for(probe: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(interval)
    return False
