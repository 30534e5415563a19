"""The RAG devkit stand-ins (RAG service, model server) and an fd2 serving a project with both.

Shared by test_rag_service*.py and test_model_server*.py: real processes over loopback.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from .conftest import Service, fd2_argv, fd2_env, free_port, opened, start_service
from .leaks import LEAKS
from .support import REPO

STANDINS = REPO / "tests" / "standins"
JWT_SECRET = "devkit-e2e-jwt-secret-0123456789abcdef"
MODEL_SERVER_KEY = "ms-e2e-key-5f1c0a9b7d"
PROJECT = "kb"
for _secret in (JWT_SECRET, MODEL_SERVER_KEY):
    LEAKS.add_secret(_secret)


def start_rag_standin(log_dir: Path) -> Service:
    port = free_port()
    argv = [
        sys.executable,
        str(STANDINS / "rag_service.py"),
        "--port",
        str(port),
        "--jwt-secret",
        JWT_SECRET,
    ]
    return start_service(
        "rag-standin", argv, port=port, ready_path="/api/v1/health", log_dir=log_dir
    )


def start_model_standin(log_dir: Path) -> Service:
    port = free_port()
    argv = [sys.executable, str(STANDINS / "model_server.py"), "--port", str(port)]
    return start_service(
        "model-standin", argv, port=port, ready_path="/api/v1/models/health", log_dir=log_dir
    )


def project_manifest(rag: str, models: str) -> dict[str, Any]:
    """A Control Tower project with RAG and model-server modules; `rag`, `models`: host:port."""
    closed = f"127.0.0.1:{free_port()}"
    rag_base = {
        "service_url": f"http://{rag}/api/v1",
        "configuration_name": "kb",
        "request_timeout": 3,
        "max_retries": 2,
    }
    return {
        "project_id": PROJECT,
        "project_name": "Knowledge base",
        "environment": "development",
        "environments": {
            "development": {
                "secrets": {"jwt": "env:DEVKIT_E2E_JWT_SECRET", "models": "env:DEVKIT_E2E_MS_KEY"}
            }
        },
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
                "name": "knowledge-base",
                "config": {
                    **rag_base,
                    "default_k": 3,
                    "default_similarity_threshold": 0.2,
                    "use_reranking": True,
                    "query_expansion_enabled": True,
                    "query_expansion_strategy": "multi_query",
                    "query_expansion_llm_config": "llama3-8b",
                    "query_expansion_num_queries": 2,
                    "default_metadata_filter": {"status": "published"},
                },
            },
            {
                "module_type": "rag_service",
                "name": "secure-kb",
                "config": {
                    **rag_base,
                    "configuration_name": "secure",
                    "jwt_auth_enabled": True,
                    "jwt_module_reference": "auth",
                },
            },
            {
                "module_type": "rag_service",
                "name": "metered-kb",
                "config": rag_base,
            },
            {
                "module_type": "rag_service",
                "name": "hung",
                "config": {**rag_base, "configuration_name": "hang", "request_timeout": 1},
            },
            {
                "module_type": "rag_service",
                "name": "down",
                "config": {**rag_base, "service_url": f"http://{closed}/api/v1"},
            },
            {
                "module_type": "model_server",
                "name": "models",
                "config": {
                    "service_url": f"http://{models}/api/v1/models",
                    "default_embedding_model": "BAAI/bge-large-en-v1.5",
                    "default_reranker_model": "BAAI/bge-reranker-large",
                    "default_classifier_model": "cross-encoder/ms-marco-MiniLM-L-12-v2",
                    "available_embedding_models": [
                        "BAAI/bge-large-en-v1.5",
                        "intfloat/e5-large-v2",
                        "gone-missing",
                        "boom",
                        "hang",
                        "garbage",
                        "short",
                    ],
                    "available_reranker_models": ["BAAI/bge-reranker-large"],
                    "available_classifier_models": ["cross-encoder/ms-marco-MiniLM-L-12-v2"],
                    "batch_size": 4,
                    "request_timeout": 2,
                    "max_retries": 1,
                },
            },
            {
                "module_type": "model_server",
                "name": "keyed-models",
                "config": {
                    "service_url": f"http://{models}/api/v1/models",
                    "api_key_enabled": True,
                    "api_key": "${environments.${environment}.secrets.models}",
                },
            },
            {
                "module_type": "model_server",
                "name": "down-models",
                "config": {"service_url": f"http://{closed}/api/v1/models", "max_retries": 1},
            },
        ],
        # Each query is charged its estimate (no usage comes back): the question's tokens + 1024.
        "metadata": {"fd2": {"modules": {"metered-kb": {"limits": {"tokens_per_minute": 2500}}}}},
    }


def open_all_but_secure(raw: dict[str, Any]) -> dict[str, Any]:
    """Every module but `secure-kb` opened explicitly; that one says only what the Control
    Tower keeps (`jwt_auth_enabled` + `jwt_module_reference`), and fd2 asks for tokens."""
    opened(raw)
    secure = next(module for module in raw["modules"] if module["name"] == "secure-kb")
    del secure["auth"]
    return raw


def start_devkit_fd2(manifest: dict[str, Any], directory: Path) -> Service:
    manifests = directory / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    (manifests / "kb.json").write_text(json.dumps(manifest, indent=2))
    port = free_port()
    argv = fd2_argv(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--manifests",
        str(manifests),
        "--default-env",
        "development",
        "--workers",
        "1",
    )
    env = {**fd2_env(), "DEVKIT_E2E_JWT_SECRET": JWT_SECRET, "DEVKIT_E2E_MS_KEY": MODEL_SERVER_KEY}
    return start_service(
        "fd2-devkit", argv, port=port, ready_path="/healthz", log_dir=directory, env=env
    )


def token(**claims: Any) -> str:
    now = int(time.time())
    base = {
        "sub": "alice",
        "type": "access",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "project": PROJECT,
        "environment": "development",
    }
    return jwt.encode({**base, **claims}, JWT_SECRET, algorithm="HS256")


def seen(standin: Service) -> list[dict[str, Any]]:
    """What the stand-in received, oldest first."""
    answer = httpx.get(f"{standin.url}/_standin/requests", timeout=5)
    answer.raise_for_status()
    return list(answer.json())


def reset(standin: Service) -> None:
    httpx.post(f"{standin.url}/_standin/reset", timeout=5).raise_for_status()


def refused(answer: httpx.Response, status: int) -> dict[str, Any]:
    """An OpenAI-shaped fd2 error with `status` and a request id; its `error` object."""
    assert answer.status_code == status, answer.text
    assert answer.headers.get("x-request-id")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}, error
    assert "Traceback" not in error["message"]
    return dict(error)


@pytest.fixture(scope="module", name="devkit")
def devkit_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    """The two stand-ins and an fd2 serving the project in front of them."""
    directory = tmp_path_factory.mktemp("devkit")
    rag = start_rag_standin(directory)
    models = start_model_standin(directory)
    manifest = open_all_but_secure(project_manifest(rag.address, models.address))
    gateway = start_devkit_fd2(manifest, directory)
    yield {"rag": rag, "models": models, "fd2": gateway}
    for service in (gateway, rag, models):
        service.stop()
