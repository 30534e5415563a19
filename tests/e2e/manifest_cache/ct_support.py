"""fd2 in front of the Control Tower stand-in: starting both, steering the stand-in, admin calls."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai

from fd2.control.manifests.portable import portable

from ..conftest import (
    EXAMPLE_MANIFESTS,
    EXAMPLE_UPSTREAM,
    Service,
    fd2_argv,
    fd2_env,
    free_port,
    start_service,
    without_auth_and_limits,
)
from ..support import REPO

CT_SCRIPT = REPO / "tests" / "standins" / "control_tower.py"
CT_SECRET = "ct-client-secret-for-tests"
ADMIN_TOKEN = "admin-token-for-tests-7f3a"
PROMPT = "You are ACME's helpful assistant."


def acme_manifest(upstream: str, project_id: str = "acme", prompt: str | None = None) -> dict:
    text = (EXAMPLE_MANIFESTS / "acme.json").read_text().replace(EXAMPLE_UPSTREAM, upstream)
    # Written as an operator must for the Control Tower: fd2's settings under metadata.fd2.
    manifest = portable(json.loads(without_auth_and_limits(text)))
    manifest["project_id"] = project_id
    if prompt is not None:
        set_prompt(manifest, prompt)
    return manifest


def set_prompt(manifest: dict, prompt: str) -> None:
    for module in manifest["modules"]:
        if module["name"] == "chat":
            module["config"]["system_prompt"] = prompt


def start_tower(manifests: Path, logs: Path, *, etag: bool = False) -> Service:
    port = free_port()
    argv = [sys.executable, str(CT_SCRIPT), "--port", str(port), "--manifests", str(manifests)]
    argv += ["--secret", CT_SECRET, *(["--etag"] if etag else [])]
    return start_service("control-tower", argv, port=port, ready_path="/_ct/stats", log_dir=logs)


def start_fd2_on(
    tower_url: str,
    logs: Path,
    *flags: str,
    secret: str = CT_SECRET,
    name: str = "fd2-ct",
    env: dict[str, str] | None = None,
    admin: bool = True,
) -> Service:
    """fd2 with the Control Tower as its only manifest source (and the admin API on)."""
    port = free_port()
    environ = fd2_env()
    environ["CT_SECRET"] = secret
    environ["FD2_TEST_ADMIN_TOKEN"] = ADMIN_TOKEN
    environ.update(env or {})
    argv = fd2_argv(
        "serve",
        "--port",
        str(port),
        "--control-tower",
        tower_url,
        "--control-tower-secret-ref",
        "env:CT_SECRET",
        *(["--admin-token-ref", "env:FD2_TEST_ADMIN_TOKEN"] if admin else []),
        *flags,
    )
    return start_service(name, argv, port=port, ready_path="/healthz", log_dir=logs, env=environ)


@dataclass
class Gateway:
    """One fd2 process and the calls a test makes to it."""

    service: Service
    clients: list[openai.OpenAI] = field(default_factory=list)
    _by_route: dict[str, openai.OpenAI] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.service.url

    def client(self, project_module: str = "acme/chat", timeout: float = 20) -> openai.OpenAI:
        client = openai.OpenAI(
            base_url=f"{self.url}/{project_module}/v1",
            api_key="unused",
            max_retries=0,
            timeout=timeout,
        )
        self.clients.append(client)
        return client

    def prompt(self, project_module: str = "acme/chat") -> str:
        """The system prompt the upstream saw: tells which manifest version served."""
        client = self._by_route.get(project_module)
        if client is None:
            client = self._by_route[project_module] = self.client(project_module)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "which prompt?"}]
        )
        return str(json.loads(reply.choices[0].message.content or "{}")["messages"][0]["content"])

    def admin(self, method: str, path: str, token: str | None = ADMIN_TOKEN) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=20)

    def routes(self) -> dict[str, Any]:
        response = self.admin("GET", "/admin/routes")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def project(self, name: str) -> dict[str, Any] | None:
        for entry in self.routes()["projects"]:
            if entry["project"] == name:
                return dict(entry)
        return None

    def metric(self, name: str, labels: str = "") -> float | None:
        """One sample of GET /metrics, e.g. metric("fd2_routes") or with labels 'project="acme"'."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            key, _, value = line.rpartition(" ")
            if key == wanted:
                return float(value)
        return None

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.service.stop()


@dataclass
class Tower:
    """The Control Tower stand-in process and its manifest directory."""

    service: Service
    manifests: Path

    @property
    def url(self) -> str:
        return self.service.url

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_ct/stats", timeout=5).json())

    def calls(self) -> dict[str, int]:
        return dict(self.stats()["calls"])

    def reset(self) -> None:
        httpx.post(f"{self.url}/_ct/reset", timeout=5).raise_for_status()

    def behave(self, **change: Any) -> None:
        httpx.post(f"{self.url}/_ct/behaviour", json=change, timeout=5).raise_for_status()

    def write(self, project: str, manifest: dict) -> None:
        temporary = self.manifests / f".{project}.tmp"
        temporary.write_text(json.dumps(manifest))
        temporary.replace(self.manifests / f"{project}.json")

    def read(self, project: str) -> dict:
        return dict(json.loads((self.manifests / f"{project}.json").read_text()))
