"""The worked manifests (examples/manifests/rag-service.json, model-server.json) go through the
Control Tower stand-in (`POST` then `GET`, its models table dropping what it does not declare),
come back with every field written, pass `fd2 check --strict`, and serve: fd2 in front of the
devkit stand-ins, called with tokens of the manifest's JWT module."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .conftest import (
    EXAMPLE_MANIFESTS,
    Service,
    fd2_argv,
    fd2_env,
    free_port,
    start_service,
)
from .devkit_services import (
    JWT_SECRET,
    STANDINS,
    seen,
    start_model_standin,
    start_rag_standin,
    token,
)

SUPERUSER = "ct-superuser-secret-for-devkit-tests"
EXAMPLES = {"rag-service.json": "knowledge", "model-server.json": "models"}
ENV = {"KNOWLEDGE_JWT_SECRET": JWT_SECRET, "MODELS_JWT_SECRET": JWT_SECRET}


def _pointed(name: str, rag: Service, models: Service) -> dict[str, Any]:
    text = (EXAMPLE_MANIFESTS / name).read_text()
    text = text.replace("127.0.0.1:9300", rag.address).replace("127.0.0.1:9301", models.address)
    return dict(json.loads(text))


def _subset(written: Any, stored: Any, where: str) -> None:
    """Everything written is stored unchanged (the Control Tower may add defaults beside it)."""
    if isinstance(written, dict):
        assert isinstance(stored, dict), where
        for key, value in written.items():
            assert key in stored, f"{where}.{key} was dropped"
            _subset(value, stored[key], f"{where}.{key}")
    else:
        assert stored == written, where


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("devkit-ct")
    rag, models = start_rag_standin(directory), start_model_standin(directory)
    store = directory / "ct"
    store.mkdir()
    port = free_port()
    argv = [sys.executable, str(STANDINS / "control_tower.py"), "--port", str(port)]
    argv += ["--manifests", str(store), "--superuser-secret", SUPERUSER]
    tower = start_service(
        "control-tower", argv, port=port, ready_path="/manifests", log_dir=directory
    )
    sent, stored = {}, {}
    with httpx.Client(base_url=tower.url, timeout=10) as client:
        for name, project in EXAMPLES.items():
            sent[project] = _pointed(name, rag, models)
            created = client.post(
                "/manifests",
                json={"manifest": sent[project]},
                headers={"X-DSPAI-Client-Secret": SUPERUSER},
            )
            assert created.status_code == 201, created.text
            stored[project] = client.get(f"/manifests/{project}").json()
    served = directory / "served"
    served.mkdir()
    for project, manifest in stored.items():
        (served / f"{project}.json").write_text(json.dumps(manifest, indent=2))
    port = free_port()
    gateway = start_service(
        "fd2-devkit-examples",
        fd2_argv("serve", "--host", "127.0.0.1", "--port", str(port), "--manifests", str(served)),
        port=port,
        ready_path="/healthz",
        log_dir=directory,
        env={**fd2_env(), **ENV},
    )
    yield {
        "sent": sent,
        "stored": stored,
        "served": served,
        "fd2": gateway,
        "rag": rag,
        "models": models,
    }
    for service in (gateway, tower, rag, models):
        service.stop()


@pytest.mark.parametrize("project", EXAMPLES.values())
def test_every_field_survives_the_control_tower(round_trip: dict[str, Any], project: str) -> None:
    sent, stored = round_trip["sent"][project], round_trip["stored"][project]
    assert stored["metadata"] == sent["metadata"]
    assert stored["environments"] == sent["environments"]
    for module in sent["modules"]:
        kept = next(entry for entry in stored["modules"] if entry["name"] == module["name"])
        _subset(module, kept, f"{project}/{module['name']}")


def test_fd2_check_passes_on_what_the_control_tower_gave_back(round_trip: dict[str, Any]) -> None:
    result = subprocess.run(
        fd2_argv("check", "--strict", str(round_trip["served"])),
        capture_output=True,
        text=True,
        env={**fd2_env(), **ENV},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "jwt_auth_enabled + jwt_module_reference" in result.stdout


def test_the_rag_example_serves_with_the_callers_token(round_trip: dict[str, Any]) -> None:
    url = f"{round_trip['fd2'].url}/knowledge/knowledge-base/query"
    grant = token(project="knowledge", models=["production-kb"])
    answer = httpx.post(
        url,
        json={"query": "What is machine learning?"},
        headers={"authorization": f"Bearer {grant}"},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["configuration_name"] == "production-kb"
    received = seen(round_trip["rag"])[-1]
    assert received["headers"]["authorization"] == f"Bearer {grant}"
    assert received["body"]["k"] == 10 and received["body"]["filter"] == {"status": "published"}
    # A token whose models leave out the configuration may not use it.
    other = token(project="knowledge", models=["gpt-4o-mini"])
    denied = httpx.post(
        url, json={"query": "q"}, headers={"authorization": f"Bearer {other}"}, timeout=20
    )
    assert denied.status_code in (401, 403), denied.text
    assert httpx.post(url, json={"query": "q"}, timeout=20).status_code == 401


def test_the_model_server_example_serves_the_openai_sdk(round_trip: dict[str, Any]) -> None:
    grant = token(project="models")
    with openai.OpenAI(
        base_url=f"{round_trip['fd2'].url}/models/embedding-reranker/v1",
        api_key=grant,
        max_retries=0,
    ) as sdk:
        result = sdk.embeddings.create(model="intfloat/e5-large-v2", input=["a", "b", "c"])
    assert len(result.data) == 3 and len(result.data[0].embedding) == 8
    received = seen(round_trip["models"])[-1]
    assert received["path"] == "/api/v1/models/embeddings"
    assert received["headers"]["authorization"] == f"Bearer {grant}"


def test_the_examples_name_only_fields_the_control_tower_declares() -> None:
    sys.path.insert(0, str(STANDINS))
    from ct_models import PROJECT
    from ct_types import plain

    for name in EXAMPLES:
        written = json.loads((EXAMPLE_MANIFESTS / name).read_text())
        # The models table settles the input in place, as pydantic's validators do: a copy.
        checked = plain(PROJECT.check(copy.deepcopy(written)).value)
        for module in written["modules"]:
            kept = next(entry for entry in checked["modules"] if entry["name"] == module["name"])
            _subset(module, kept, f"{name}/{module['name']}")
        assert checked["metadata"] == written["metadata"]


def test_examples_exist() -> None:
    assert all(Path(EXAMPLE_MANIFESTS / name).is_file() for name in EXAMPLES)
