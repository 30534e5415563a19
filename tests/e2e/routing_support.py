"""Manifests and helpers for the deployments (routing) end-to-end tests and bench."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import Service, fd2_argv, fd2_env, free_port, start_service
from .leaks import LEAKS

KEY = "${environments.${environment}.secrets.up_key}"


def target(address: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": f"http://{address}/v1", "model": model, "api_key": KEY, **extra}


def routing_manifest(
    deployments: dict[str, Any],
    *,
    project: str = "routing",
    routing: dict[str, Any] | None = None,
    module_extra: dict[str, Any] | None = None,
    api_keys: list[dict[str, Any]] | None = None,
    auth: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Control Tower project manifest whose inference module's deployments sit in
    metadata.fd2.modules.chat.config (the place the real Control Tower keeps)."""
    overlay: dict[str, Any] = {
        "auth": auth or {"mode": "none"},
        "config": {"deployments": deployments, "routing": routing or {}},
        **(module_extra or {}),
    }
    fd2: dict[str, Any] = {"modules": {"chat": overlay}}
    if api_keys is not None:
        fd2["api_keys"] = api_keys
    return {
        "project_id": project,
        "project_name": "routing tests",
        "version": "1.0.0",
        "environment": "development",
        "environments": {"development": {"secrets": {"up_key": "env:BILLING_UPSTREAM_API_KEY"}}},
        "modules": [{"module_type": "inference_endpoint", "name": "chat", "config": {}}],
        "metadata": {"fd2": fd2},
    }


ADMIN_TOKEN = "admin-token-routing-e2e-5d1e"
LEAKS.add_secret(ADMIN_TOKEN)


def start_routed_fd2(manifests: Path, log_dir: Path, name: str = "fd2-routing") -> Service:
    """fd2 on `manifests` with the admin API on (token ADMIN_TOKEN)."""
    env = fd2_env()
    env["FD2_E2E_ADMIN_TOKEN"] = ADMIN_TOKEN
    port = free_port()
    argv = fd2_argv(
        "serve",
        *("--host", "127.0.0.1", "--port", str(port), "--manifests", str(manifests)),
        *("--default-env", "development", "--workers", "1"),
        *("--admin-token-ref", "env:FD2_E2E_ADMIN_TOKEN"),
    )
    return start_service(name, argv, port=port, ready_path="/healthz", log_dir=log_dir, env=env)
