"""A real redis-server for a test: loopback, a free port, no persistence, stopped at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import free_port

STARTUP_DEADLINE_S = 10.0
LIFETIME_S = 600  # `timeout` ends a server that outlives its test for any reason


class RedisServer:
    """One redis-server; `stop()` and `start()` again keep the port (outage tests)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            pytest.fail("redis-server is not installed: run `make redis-server`", pytrace=False)
        self.port = port or free_port()
        self.workdir = workdir
        self._binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["timeout", str(LIFETIME_S), self._binary, "--bind", "127.0.0.1"]
        argv += ["--port", str(self.port), "--protected-mode", "yes"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        with log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}", pytrace=False)
            time.sleep(0.05)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@contextmanager
def running_redis(workdir: Path) -> Iterator[str]:
    """Yields `redis://127.0.0.1:<port>/0` while a redis-server of our own runs."""
    server = RedisServer(workdir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
