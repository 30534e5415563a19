"""fd2 under Granian with Redis, the OpenAI stand-in and the scripted upstream (OpenAI and
Gemini wire formats), serving the `promptsp` project: inference modules with manifest prompts,
a Gemini-translated one, and a `structured_prompt` module."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ..conftest import Service, fd2_argv, fd2_env, free_port, start_service
from ..leaks import LEAKS
from ..redis_server import running_redis
from ..support import REPO

ADMIN_TOKEN = "prompts-admin-token-e2e-7719"
LEAKS.add_secret(ADMIN_TOKEN)
PROJECT = "promptsp"
OPEN = {"mode": "none"}
SCRIPTED = REPO / "tests" / "standins" / "scripted_upstream.py"

REVIEW = {
    "versions": [
        {
            "messages": [
                {"role": "system", "content": "You review {{ language }} code."},
                {"role": "user", "content": "Review:\n{{ code }}"},
            ],
            "input_schema": {
                "type": "object",
                "properties": {
                    "language": {"type": "string", "default": "Python"},
                    "code": {"type": "string", "maxLength": 2000},
                },
                "required": ["code"],
            },
            "parameters": {"temperature": 0.1},
        },
        {
            "messages": [
                {"role": "developer", "content": "Review {{ language }} code, v2."},
                {"role": "user", "content": "{{ code }}"},
            ],
            "input_schema": {
                "type": "object",
                "properties": {"language": {"type": "string"}, "code": {"type": "string"}},
                "required": ["language", "code"],
            },
        },
    ],
    "labels": {"production": 1},
}
SNEAKY = {"versions": [{"messages": [{"role": "user", "content": "{{ name|attr('__class__') }}"}]}]}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
EXTRACT = {
    "versions": [
        {
            "messages": [{"role": "user", "content": "Who is in: {{ text }}"}],
            "output_schema": PERSON,
            "output_schema_name": "person",
        }
    ]
}


def _llm(name: str, url: str, model: str) -> dict[str, Any]:
    return {
        "module_type": "inference_endpoint",
        "name": name,
        "auth": OPEN,
        "config": {
            "model_name": model,
            "endpoint_url": f"${{environments.${{environment}}.urls.{url}}}",
            "api_key": "${environments.common.secrets.upstream_api_key}",
        },
    }


def project_manifest(standin: str, scripted: str) -> dict[str, Any]:
    gemini = _llm("gemini", "scripted_base", "echo")
    return {
        "project_id": PROJECT,
        "project_name": "prompts e2e",
        "version": "1.0.0",
        "owner": "tests",
        "environment": "development",
        "environments": {
            "common": {"secrets": {"upstream_api_key": "env:BILLING_UPSTREAM_API_KEY"}},
            "development": {
                "urls": {
                    "llm": f"http://{standin}/v1/chat/completions",
                    "scripted": f"http://{scripted}/v1/chat/completions",
                    "scripted_base": f"http://{scripted}",
                }
            },
        },
        "modules": [
            _llm("chat", "llm", "gpt-4o-mini"),
            _llm("scripted", "scripted", "echo"),
            _llm("cached", "scripted", "json"),
            _llm("native", "scripted", "echo"),
            gemini,
            {
                "module_type": "structured_prompt",
                "name": "analyze",
                "auth": OPEN,
                "config": {"inference_module": "scripted", "default_model": "json"},
            },
        ],
        # Where fd2's own settings survive the Control Tower (docs/manifests.md).
        "metadata": {
            "fd2": {
                "modules": {
                    "chat": {"config": {"prompts": {"review": REVIEW, "sneaky": SNEAKY}}},
                    "scripted": {"config": {"prompts": {"extract": EXTRACT}}},
                    "gemini": {"config": {"provider": "gemini", "prompts": {"review": REVIEW}}},
                    "cached": {"cache": {"ttl_s": 60}},
                    "native": {
                        "config": {
                            "responses": {"passthrough": True},
                            "prompts": {"extract": EXTRACT},
                        }
                    },
                    "analyze": {
                        "dependencies": ["scripted", "gemini", "cached"],
                        "config": {"prompts": {"extract": EXTRACT}},
                    },
                }
            }
        },
    }


@pytest.fixture(scope="session")
def scripted(logs_dir: Path) -> Iterator[Service]:
    port = free_port()
    argv = [sys.executable, str(SCRIPTED), "--host", "127.0.0.1", "--port", str(port)]
    service = start_service(
        "scripted", argv, port=port, ready_path="/_scripted/requests", log_dir=logs_dir
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, standin: Service, scripted: Service
) -> Iterator[tuple[Service, Service]]:
    """Two fd2 replicas sharing one redis-server and the manifests."""
    root = tmp_path_factory.mktemp("prompts")
    manifests = root / "manifests"
    manifests.mkdir()
    text = json.dumps(project_manifest(standin.address, scripted.address))
    (manifests / "promptsp.json").write_text(text)
    services: list[Service] = []
    with running_redis(root) as redis_url:
        try:
            for name in ("fd2-prompts", "fd2-prompts-b"):
                port = free_port()
                env = fd2_env()
                env["FD2_E2E_ADMIN_TOKEN"] = ADMIN_TOKEN
                argv = fd2_argv(
                    "serve", "--host", "127.0.0.1", "--port", str(port),
                    "--manifests", str(manifests), "--default-env", "development",
                    "--workers", "1", "--redis-url", redis_url, "--redis-timeout", "0.5",
                    "--admin-token-ref", "env:FD2_E2E_ADMIN_TOKEN",
                )  # fmt: skip
                services.append(
                    start_service(
                        name, argv, port=port, ready_path="/healthz", log_dir=root, env=env
                    )
                )
            yield services[0], services[1]
        finally:
            for service in services:
                service.stop()


@pytest.fixture(scope="session")
def gateway(replicas: tuple[Service, Service]) -> Service:
    return replicas[0]


def sdk_for(gateway: Service, module: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.url}/{PROJECT}/{module}/v1", api_key="unused", max_retries=0, timeout=30
    )


@pytest.fixture
def chat_sdk(gateway: Service) -> Iterator[openai.OpenAI]:
    client = sdk_for(gateway, "chat")
    yield client
    client.close()


@pytest.fixture
def scripted_sdk(gateway: Service) -> Iterator[openai.OpenAI]:
    client = sdk_for(gateway, "scripted")
    yield client
    client.close()


@pytest.fixture
def gemini_sdk(gateway: Service) -> Iterator[openai.OpenAI]:
    client = sdk_for(gateway, "gemini")
    yield client
    client.close()


@pytest.fixture
def admin(gateway: Service) -> Iterator[httpx.Client]:
    client = httpx.Client(
        base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )
    yield client
    client.close()
