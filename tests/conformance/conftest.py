"""The conformance suite's processes: the replay stand-in, and one fd2 serving every provider.

fd2 reads one Control Tower project manifest, `conformance`, with one inference module per
provider directory under `transcripts/` (module name = provider name). Each module's provider
settings come from its `_provider.json` and are given as the real Control Tower keeps them: in
`metadata.fd2.modules.<name>.config` (the module's own `config` holds only what the Control
Tower's model declares).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.conftest import (  # the e2e helpers: real processes on loopback, the leak check
    Service,
    free_port,
    pytest_runtest_makereport,  # noqa: F401  # failed tests show the servers' logs
    pytest_sessionfinish,  # noqa: F401  # the suite-wide leak check
    record_answers,  # noqa: F401  # every answer goes to the leak check
    start_fd2,
    start_service,
)
from e2e.leaks import LEAKS
from e2e.support import REPO

HERE = Path(__file__).resolve().parent
TRANSCRIPTS = HERE / "transcripts"
REPLAY_SCRIPT = REPO / "tests" / "standins" / "provider_replay.py"
PROJECT = "conformance"
UNKNOWN_PROVIDER_MODULE = "unknown-provider"
SECRET_FIELDS = ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


@dataclass(frozen=True)
class ProviderDir:
    name: str
    config: dict[str, Any]
    base_path: str


def providers() -> list[ProviderDir]:
    """Every provider with a `_provider.json` under transcripts/."""
    found = []
    for path in sorted(TRANSCRIPTS.glob("*/_provider.json")):
        raw = json.loads(path.read_text())
        found.append(ProviderDir(path.parent.name, raw["config"], raw.get("base_path", "")))
    return found


for _provider in providers():
    for _field in SECRET_FIELDS:
        if isinstance(_provider.config.get(_field), str):
            LEAKS.add_secret(_provider.config[_field])


def manifest(replay: str) -> dict[str, Any]:
    """The project manifest: one inference module per provider, pointed at the stand-in."""
    modules: list[dict[str, Any]] = []
    overlay: dict[str, Any] = {}
    for provider in providers():
        modules.append(
            {
                "module_type": "inference_endpoint",
                "name": provider.name,
                "version": "1.0.0",
                "status": "enabled",
                "config": {"endpoint_url": f"http://{replay}{provider.base_path}"},
            }
        )
        overlay[provider.name] = {"auth": {"mode": "none"}, "config": provider.config}
    # A module naming a provider fd2 does not know: its routes answer 503, its siblings serve.
    modules.append(
        {
            "module_type": "inference_endpoint",
            "name": UNKNOWN_PROVIDER_MODULE,
            "version": "1.0.0",
            "config": {"endpoint_url": f"http://{replay}"},
        }
    )
    overlay[UNKNOWN_PROVIDER_MODULE] = {"auth": {"mode": "none"}, "config": {"provider": "nope"}}
    return {
        "project_id": PROJECT,
        "project_name": "Provider conformance",
        "version": "1.0.0",
        "owner": "tests",
        "environment": "development",
        "environments": {"development": {}},
        "modules": modules,
        "metadata": {"fd2": {"modules": overlay}},
    }


@pytest.fixture(scope="session")
def conformance_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance-logs")


@pytest.fixture(scope="session")
def replay(conformance_logs: Path) -> Iterator[Service]:
    port = free_port()
    argv = [sys.executable, str(REPLAY_SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
    service = start_service(
        "provider-replay",
        argv,
        port=port,
        ready_path="/_replay/health",
        log_dir=conformance_logs,
        deadline_s=15,
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def conformance_fd2(
    replay: Service, conformance_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("conformance-manifests")
    (directory / "conformance.json").write_text(json.dumps(manifest(replay.address), indent=2))
    service = start_fd2(directory, conformance_logs, name="fd2-conformance")
    yield service
    service.stop()


class Replay:
    """The test's handle on the stand-in: load a transcript, read what it received."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=10.0)

    def load(self, transcript: dict[str, Any] | None) -> None:
        self._client.post("/_replay/load", json={"transcript": transcript}).raise_for_status()

    def result(self) -> dict[str, Any]:
        response = self._client.get("/_replay/result")
        response.raise_for_status()
        return dict(response.json())

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def replayer(replay: Service) -> Iterator[Replay]:
    handle = Replay(replay.url)
    yield handle
    handle.close()
