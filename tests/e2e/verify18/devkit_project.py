"""The verification project for rag_service and model_server: cases the modules' own tests do
not write (a token limited to some configurations, `api_key_enabled` without a server key,
bodies fd2 reads and cannot forward, answers with the wrong count), over the devkit stand-ins."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from ..conftest import Service, fd2_argv, fd2_env, free_port, start_service
from ..devkit_services import start_model_standin, start_rag_standin
from ..leaks import LEAKS

PROJECT = "verify"
JWT_SECRET = "verify18-jwt-secret-0123456789abcdef0123"
CLIENT_KEY = "verify18-project-key-0001"
LIMITED_KEY = "verify18-project-key-limited-0002"
"""An API key allowed only the `kb` configuration (`models`)."""
for _secret in (JWT_SECRET, CLIENT_KEY, LIMITED_KEY):
    LEAKS.add_secret(_secret)


def _hash(key: str) -> str:
    return hmac.new(b"", key.encode(), hashlib.sha256).hexdigest()


def manifest(rag: str, models: str) -> dict[str, Any]:
    """Written as the Control Tower keeps it: no module `auth`; fd2's settings in metadata."""
    closed = f"127.0.0.1:{free_port()}"
    ms = f"http://{models}/api/v1/models"
    return {
        "project_id": PROJECT,
        "project_name": "verify18",
        "environment": "development",
        "environments": {"development": {"secrets": {"jwt": "env:VERIFY18_JWT_SECRET"}}},
        "modules": [
            {
                "module_type": "jwt_config",
                "name": "auth",
                "config": {
                    "secret_key": "${environments.${environment}.secrets.jwt}",
                    "algorithm": "HS256",
                },
            },
            {
                "module_type": "rag_service",
                "name": "kb",
                "config": {
                    "service_url": f"http://{rag}/api/v1",
                    "configuration_name": "kb",
                    "jwt_auth_enabled": True,
                    "jwt_module_reference": "auth",
                    "request_timeout": 2,
                    "max_retries": 1,
                },
            },
            {
                "module_type": "rag_service",
                "name": "keyed-kb",
                "config": {"service_url": f"http://{rag}/api/v1", "configuration_name": "kb"},
            },
            {
                "module_type": "rag_service",
                "name": "metered-kb",
                "config": {"service_url": f"http://{rag}/api/v1", "configuration_name": "kb"},
            },
            {
                "module_type": "model_server",
                "name": "open-models",
                "config": {"service_url": ms, "batch_size": 4, "request_timeout": 2},
            },
            {
                # The Control Tower's key-auth, with no key of the server's own.
                "module_type": "model_server",
                "name": "keyed-models",
                "config": {"service_url": ms, "api_key_enabled": True},
            },
            {
                "module_type": "model_server",
                "name": "either-models",
                "config": {
                    "service_url": ms,
                    "api_key_enabled": True,
                    "jwt_auth_enabled": True,
                    "jwt_module_reference": "auth",
                },
            },
            {
                "module_type": "model_server",
                "name": "down-models",
                "config": {"service_url": f"http://{closed}/api/v1/models", "max_retries": 1},
            },
        ],
        "metadata": {
            "fd2": {
                "api_keys": [
                    {"id": "client", "hash": _hash(CLIENT_KEY)},
                    {"id": "limited", "hash": _hash(LIMITED_KEY), "models": ["kb"]},
                ],
                "modules": {
                    **{
                        name: {"auth": {"mode": "api_key"}}
                        for name in ("keyed-kb", "open-models", "down-models")
                    },
                    # A chat's estimate is its prompt + 1024; the devkit reports 11 tokens.
                    "metered-kb": {
                        "auth": {"mode": "api_key"},
                        "limits": {"tokens_per_minute": 3000},
                    },
                },
            }
        },
    }


def token(**claims: Any) -> str:
    now = int(time.time())
    base = {
        "sub": "verifier",
        "type": "access",
        "iat": now,
        "exp": now + 300,
        "project": PROJECT,
        "environment": "development",
    }
    return jwt.encode({**base, **claims}, JWT_SECRET, algorithm="HS256")


def start(directory: Path, rag: Service, models: Service) -> Service:
    manifests = directory / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    raw = manifest(rag.address, models.address)
    (manifests / "verify.json").write_text(json.dumps(raw, indent=2))
    port = free_port()
    argv = fd2_argv(
        "serve",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--manifests", str(manifests), "--default-env", "development"),
    )
    env = {**fd2_env(), "VERIFY18_JWT_SECRET": JWT_SECRET}
    return start_service(
        "fd2-verify18", argv, port=port, ready_path="/healthz", log_dir=directory, env=env
    )


@pytest.fixture(scope="module", name="services")
def services_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    directory = tmp_path_factory.mktemp("verify18-devkit")
    rag = start_rag_standin(directory)
    models = start_model_standin(directory)
    gateway = start(directory, rag, models)
    yield {"rag": rag, "models": models, "fd2": gateway}
    for service in (gateway, rag, models):
        service.stop()
