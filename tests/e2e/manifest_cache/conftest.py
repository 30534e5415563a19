"""Fixtures for fd2 in front of the Control Tower stand-in (each test gets its own processes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..conftest import Service
from ..redis_server import RedisServer
from .ct_support import Gateway, Tower, acme_manifest, start_fd2_on, start_tower

MakeGateway = Callable[..., Gateway]


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


def _tower(tmp_path: Path, logs: Path, standin: Service, *, etag: bool) -> Iterator[Tower]:
    manifests = tmp_path / "ct-manifests"
    manifests.mkdir()
    tower = Tower(start_tower(manifests, logs, etag=etag), manifests)
    for project in ("acme", "burst"):
        tower.write(project, acme_manifest(standin.address, project))
    yield tower
    tower.service.stop()


@pytest.fixture
def tower(tmp_path: Path, logs: Path, standin: Service) -> Iterator[Tower]:
    """The stand-in serving `acme` and `burst` (both the example acme manifest), no ETags."""
    yield from _tower(tmp_path, logs, standin, etag=False)


@pytest.fixture
def etag_tower(tmp_path: Path, logs: Path, standin: Service) -> Iterator[Tower]:
    yield from _tower(tmp_path, logs, standin, etag=True)


@pytest.fixture
def make_gateway(logs: Path) -> Iterator[MakeGateway]:
    """Starts fd2 processes in front of a tower URL; all are stopped after the test."""
    started: list[Gateway] = []

    def make(tower_url: str, *flags: str, **kwargs: object) -> Gateway:
        gateway = Gateway(start_fd2_on(tower_url, logs, *flags, **kwargs))
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
