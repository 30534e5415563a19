"""A real redis-server for a test: loopback, a free port, no persistence, stopped at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..conftest import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
LIFETIME_S = 600  # `timeout` ends a server that outlives its test for any reason


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis(log_dir: Path) -> Iterator[str]:
    """Yields `redis://127.0.0.1:<port>/0` while a redis-server of our own runs."""
    port = free_port()
    log = (log_dir / f"redis-{port}.log").open("wb")
    proc = subprocess.Popen(
        [
            # `timeout` bounds the server's life even if this test process dies abruptly.
            "timeout",
            str(LIFETIME_S),
            REDIS_SERVER,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start (see {log.name})")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
