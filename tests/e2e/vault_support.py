"""The Vault stand-in process, its test controls, and fd2 started to read secrets from it."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import REPO, Service, fd2_argv, fd2_env, free_port, opened, start_service
from .leaks import LEAKS

VAULT_SCRIPT = REPO / "tests" / "standins" / "vault.py"


class VaultControl:
    """Drives the stand-in's `/_vault/` controls; every secret it stores joins the leak check."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.url = service.url
        self._client = httpx.Client(base_url=service.url, timeout=5.0)

    def put_secret(
        self, mount: str, path: str, data: dict[str, str], *, namespace: str = ""
    ) -> None:
        for value in data.values():
            LEAKS.add_secret(value)
        self._post("secret", {"namespace": namespace, "mount": mount, "path": path, "data": data})

    def add_approle(self, role_id: str, secret_id: str, ttl: int, max_ttl: int = 0) -> None:
        LEAKS.add_secret(secret_id)
        self._post(
            "approle",
            {"role_id": role_id, "secret_id": secret_id, "ttl": ttl, "max_ttl": max_ttl},
        )

    def add_token(self, token: str, ttl: int = 0, *, renewable: bool = False) -> None:
        LEAKS.add_secret(token)
        self._post("token", {"token": token, "ttl": ttl, "renewable": renewable})

    def revoke_all(self) -> None:
        self._post("revoke", {})

    def fail(self, status: int) -> None:
        self._post("fail", {"status": status, "errors": ["Vault is sealed"]})

    def stats(self) -> dict[str, int]:
        response = self._client.get("/_vault/stats")
        response.raise_for_status()
        return dict(response.json())

    def _post(self, action: str, payload: dict[str, Any]) -> None:
        self._client.post(f"/_vault/{action}", json=payload).raise_for_status()

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="session")
def vault_standin(logs_dir: Path) -> Iterator[Service]:
    port = free_port()
    argv = [sys.executable, str(VAULT_SCRIPT), "--host", "127.0.0.1", "--port", str(port)]
    service = start_service(
        "vault-standin", argv, port=port, ready_path="/_vault/stats", log_dir=logs_dir
    )
    yield service
    service.stop()


@pytest.fixture
def vault(vault_standin: Service) -> Iterator[VaultControl]:
    control = VaultControl(vault_standin)
    yield control
    control.fail(0)  # never leave the shared stand-in failing for the next test
    control.close()


def unique(prefix: str) -> str:
    """A name no other test uses (the stand-in is shared by the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def start_fd2_with(
    manifests: Path,
    log_dir: Path,
    *,
    name: str = "fd2-vault",
    env: dict[str, str] | None = None,
) -> Service:
    """fd2 on `manifests`, with extra environment (FD2_VAULT_* settings, credentials)."""
    port = free_port()
    argv = fd2_argv(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--manifests", str(manifests)
    )
    full_env = fd2_env()
    full_env.update(env or {})
    return start_service(
        name, argv, port=port, ready_path="/healthz", log_dir=log_dir, env=full_env
    )


def write_manifest(directory: Path, filename: str, manifest: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / filename).write_text(json.dumps(opened(manifest), indent=2))
