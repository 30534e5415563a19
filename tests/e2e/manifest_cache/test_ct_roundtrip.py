"""The Control Tower stand-in answers as the real Control Tower did (tests/standins/ct_recorded):
every recorded exchange is replayed against it over HTTP, and fd2's own settings under
`metadata.fd2` come back unchanged."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import EXAMPLE_MANIFESTS, Service, free_port, start_service
from ..support import REPO

STANDINS = REPO / "tests" / "standins"
sys.path.insert(0, str(STANDINS))  # the stand-in's helpers import each other as top-level modules

from ct_replay import canonical, play  # noqa: E402

CT_SCRIPT = STANDINS / "control_tower.py"
RECORDED = sorted((STANDINS / "ct_recorded").glob("*.json"))
SUPERUSER = "ct-superuser-secret-for-tests"


@dataclass
class Standin:
    service: Service
    manifests: Path

    @property
    def url(self) -> str:
        return self.service.url


@pytest.fixture
def standin_ct(tmp_path: Path) -> Iterator[Standin]:
    """The stand-in as the real service runs: no secret on reads, a superuser secret for writes."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    port = free_port()
    argv = [sys.executable, str(CT_SCRIPT), "--port", str(port), "--manifests", str(manifests)]
    service = start_service(
        "control-tower",
        [*argv, "--superuser-secret", SUPERUSER],
        port=port,
        ready_path="/manifests",
        log_dir=tmp_path,
    )
    yield Standin(service, manifests)
    service.stop()


def test_every_case_was_recorded() -> None:
    assert len(RECORDED) >= 13


@pytest.mark.parametrize("recording", RECORDED, ids=[path.stem for path in RECORDED])
def test_the_standin_answers_as_the_real_control_tower(
    standin_ct: Standin, recording: Path
) -> None:
    recorded = json.loads(recording.read_text())["steps"]
    got = play(standin_ct.url, recorded, secret=SUPERUSER, directory=standin_ct.manifests)
    for index, (want, have) in enumerate(zip(recorded, got, strict=True)):
        if "response" in want:
            where = f"step {index}: {want['request']['method']} {want['request']['path']}"
            assert canonical(have["response"]) == canonical(want["response"]), where


def _with_fd2_settings() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((EXAMPLE_MANIFESTS / "acme.json").read_text())
    manifest["metadata"]["fd2"] = {
        "api_keys": [{"id": "ci", "hash": "sha256:" + "cd" * 32, "modules": ["chat"]}],
        "modules": {
            "chat": {
                "auth": {"mode": "api_key"},
                "limits": {"requests_per_minute": 60, "tokens_per_minute": 5000},
                "dependencies": ["auth"],
                "config": {
                    "api_key": "${environments.${environment}.secrets.upstream_api_key}",
                    "timeouts": {"connect_s": 2, "read_s": 30},
                    "provider": "openai",
                },
            }
        },
    }
    return manifest


def test_fd2_settings_under_metadata_survive_the_round_trip(standin_ct: Standin) -> None:
    sent = _with_fd2_settings()
    headers = {"X-DSPAI-Client-Secret": SUPERUSER}
    with httpx.Client(base_url=standin_ct.url, timeout=10) as client:
        created = client.post("/manifests", json={"manifest": sent}, headers=headers)
        assert created.status_code == 201, created.text
        stored = client.get("/manifests/acme").json()

    assert stored["metadata"] == sent["metadata"]
    assert stored["environments"] == sent["environments"]
    # ...while the same settings written where fd2 used to read them are gone:
    chat = next(module for module in stored["modules"] if module["name"] == "chat")
    assert not {"auth", "limits", "dependencies"} & chat.keys()
    assert "api_key" not in chat["config"]
    embed = next(module for module in stored["modules"] if module["name"] == "embed")
    assert embed["config"]["max_tokens"] == 1024  # and defaults were added
    assert embed["status"] == "enabled"
