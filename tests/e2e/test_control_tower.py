"""fd2 with the Control Tower as its manifest source: a real stand-in process over HTTP."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from .conftest import (
    EXAMPLE_MANIFESTS,
    EXAMPLE_UPSTREAM,
    Service,
    fd2_argv,
    fd2_env,
    free_port,
    start_service,
    without_auth_and_limits,
)
from .support import REPO, assert_openai_error, wait_until

CT_SCRIPT = REPO / "tests" / "standins" / "control_tower.py"
CT_SECRET = "ct-client-secret-for-tests"
PROMPT = "You are ACME's helpful assistant."


@dataclass
class ControlTowerSetup:
    tower: Service
    fd2: Service
    manifests: Path
    logs: Path

    def calls(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.tower.url}/_ct/stats", timeout=5).json())

    def write(self, project: str, manifest: dict) -> None:
        temporary = self.manifests / f".{project}.tmp"
        temporary.write_text(json.dumps(manifest))
        temporary.replace(self.manifests / f"{project}.json")

    def client(self, project_module: str = "acme/chat") -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.fd2.url}/{project_module}/v1",
            api_key="unused",
            max_retries=0,
            timeout=20,
        )


def acme_manifest(upstream: str, project_id: str = "acme") -> dict:
    text = (EXAMPLE_MANIFESTS / "acme.json").read_text().replace(EXAMPLE_UPSTREAM, upstream)
    manifest = json.loads(without_auth_and_limits(text))
    manifest["project_id"] = project_id
    return manifest


def start_tower(manifests: Path, logs: Path, port: int | None = None) -> Service:
    port = port or free_port()
    argv = [
        sys.executable,
        str(CT_SCRIPT),
        "--port",
        str(port),
        "--manifests",
        str(manifests),
        "--secret",
        CT_SECRET,
    ]
    return start_service("control-tower", argv, port=port, ready_path="/_ct/stats", log_dir=logs)


def start_fd2_on(tower: Service, secret: str, logs: Path, *flags: str) -> Service:
    """fd2 with the Control Tower as its only manifest source, sending `secret` to it."""
    port = free_port()
    env = fd2_env()
    env["CT_SECRET"] = secret
    argv = fd2_argv(
        "serve",
        "--port",
        str(port),
        "--control-tower",
        tower.url,
        "--control-tower-secret-ref",
        "env:CT_SECRET",
        *flags,
    )
    return start_service("fd2-ct", argv, port=port, ready_path="/healthz", log_dir=logs, env=env)


@pytest.fixture
def tower_setup(tmp_path: Path, standin: Service) -> Iterator[ControlTowerSetup]:
    manifests = tmp_path / "ct-manifests"
    manifests.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    for project in ("acme", "burst"):
        (manifests / f"{project}.json").write_text(
            json.dumps(acme_manifest(standin.address, project))
        )
    tower = start_tower(manifests, logs)
    service = start_fd2_on(tower, CT_SECRET, logs, "--manifest-ttl", "1")
    setup = ControlTowerSetup(tower, service, manifests, logs)
    yield setup
    service.stop()
    setup.tower.stop()


def test_project_from_the_control_tower_serves_the_sdk(tower_setup: ControlTowerSetup) -> None:
    reply = tower_setup.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    seen = json.loads(reply.choices[0].message.content or "{}")
    assert seen["messages"][0] == {"role": "system", "content": PROMPT}
    assert seen["authorization"] == "Bearer test-acme-key"
    assert tower_setup.calls().get("acme") == 1


def test_a_burst_for_an_uncached_project_makes_one_control_tower_call(
    tower_setup: ControlTowerSetup,
) -> None:
    def one(_: int) -> int:
        response = httpx.get(f"{tower_setup.fd2.url}/burst/chat/v1/models", timeout=20)
        return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(32)))
    assert statuses == [200] * 32
    assert tower_setup.calls().get("burst") == 1


def test_unknown_projects_are_404_and_negatively_cached(tower_setup: ControlTowerSetup) -> None:
    for _ in range(5):
        response = httpx.get(f"{tower_setup.fd2.url}/nosuch/chat/v1/models", timeout=10)
        assert response.status_code == 404
        assert "nosuch" in assert_openai_error(response.content)["message"]
    assert tower_setup.calls().get("nosuch") == 1


def test_cached_projects_outlive_a_control_tower_outage(tower_setup: ControlTowerSetup) -> None:
    client = tower_setup.client()
    client.models.list()
    tower_setup.tower.stop()
    # Well past the 1 s TTL: the refresher fails, the cached project keeps serving.
    for _ in range(15):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "still there?"}]
        )
        assert reply.choices[0].message.content
        time.sleep(0.2)
    # A project never fetched cannot be served without the Control Tower: 503, clearly.
    response = httpx.get(f"{tower_setup.fd2.url}/burst/chat/v1/models", timeout=10)
    assert response.status_code == 503
    assert "Control Tower" in assert_openai_error(response.content)["message"]


def test_a_change_at_the_control_tower_reaches_requests(tower_setup: ControlTowerSetup) -> None:
    client = tower_setup.client()
    client.models.list()
    manifest = json.loads((tower_setup.manifests / "acme.json").read_text())
    for module in manifest["modules"]:
        if module["name"] == "chat":
            module["config"]["system_prompt"] = "Prompt from the Control Tower, v2."
    tower_setup.write("acme", manifest)

    def prompt() -> str | None:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "which prompt?"}]
        )
        seen = json.loads(reply.choices[0].message.content or "{}")
        text = seen["messages"][0]["content"]
        return text if text != PROMPT else None

    assert wait_until(prompt, timeout=10, interval=0.2) == "Prompt from the Control Tower, v2."


def test_a_wrong_client_secret_is_a_clear_503(tmp_path: Path, standin: Service) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "acme.json").write_text(json.dumps(acme_manifest(standin.address)))
    tower = start_tower(manifests, tmp_path)
    service = start_fd2_on(tower, "wrong-secret", tmp_path)
    try:
        response = httpx.get(f"{service.url}/acme/chat/v1/models", timeout=10)
        assert response.status_code == 503
        assert_openai_error(response.content)
        assert b"wrong-secret" not in response.content
        assert "wrong-secret" not in service.output()
    finally:
        service.stop()
        tower.stop()
