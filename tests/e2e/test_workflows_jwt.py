"""The Control Tower's own client flow for the summarizer (its
examples/langgraph_summarizer_example.py): a token from fd2's token endpoint (the JWT service
stand-in behind it), then the workflow with that token — which each in-process model call presents
to the inference module again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

from .conftest import Service, fd2_argv, fd2_env, free_port, start_service
from .support import REPO, assert_openai_error
from .workflow_support import PROJECT, WORKFLOW, WORKFLOW_ENV, example

JWT_SCRIPT = REPO / "tests" / "standins" / "jwt_service.py"
JWT_MODULE = "summarizer-auth"
EXAMPLE_JWT_URL = "http://127.0.0.1:5000"


def start_jwt_service(root: Path) -> Service:
    config = root / "jwt-service.json"
    users = {"admin": {"password": "password", "name": "Admin"}}
    config.write_text(json.dumps({"secret": WORKFLOW_ENV["SUMMARIZER_JWT_SECRET"], "users": users}))
    port = free_port()
    argv = [sys.executable, str(JWT_SCRIPT), "--port", str(port), "--config", str(config)]
    return start_service("jwt-service", argv, port=port, ready_path="/health", log_dir=root)


def test_a_token_from_the_jwt_module_runs_the_workflow(tmp_path: Path, standin: Service) -> None:
    jwt_service = start_jwt_service(tmp_path)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    text = json.dumps(example(standin.address)).replace(EXAMPLE_JWT_URL, jwt_service.url)
    (manifests / "summarizer.json").write_text(text)
    port = free_port()
    argv = fd2_argv(
        "serve",
        *("--host", "127.0.0.1", "--port", str(port), "--manifests", str(manifests)),
        *("--default-env", "development", "--workers", "1"),
    )
    gateway = start_service(
        "fd2-workflows-jwt",
        argv,
        port=port,
        ready_path="/healthz",
        log_dir=tmp_path,
        env=fd2_env() | WORKFLOW_ENV,
    )
    try:
        login = httpx.post(
            f"{gateway.url}/{PROJECT}/{JWT_MODULE}/token",
            json={"username": "admin", "password": "password"},
            timeout=20,
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]

        url = f"{gateway.url}/{PROJECT}/{WORKFLOW}/invoke"
        answer = httpx.post(
            url,
            json={"document": "Artificial Intelligence " * 120, "workflow_params": {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        result = answer.json()
        # What the Control Tower's example client prints.
        metadata = result["metadata"]
        assert metadata["workflow_name"] == "document_summarizer"
        assert metadata["num_chunks"] == 2
        assert metadata["started_at"] <= metadata["completed_at"]
        final = json.loads(result["final_summary"])  # the stand-in describes what it received
        assert final["authorization"] == "Bearer test-summarizer-upstream-key"

        forged = httpx.post(
            url, json={"document": "x"}, headers={"Authorization": f"Bearer {token}x"}, timeout=20
        )
        assert forged.status_code == 401
        assert_openai_error(forged.content, status=401)
    finally:
        gateway.stop()
        jwt_service.stop()
