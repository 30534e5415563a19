"""The verification project for langgraph_workflow: templates that try to escape, states that
are not what the schema says, text built to make extract_json slow, an inference module with a
limit that each model call spends, and keys scoped to the workflow alone."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import Service, fd2_argv, fd2_env, free_port, start_service
from ..leaks import LEAKS

PROJECT = "verify-wf"
UPSTREAM_KEY = "verify18-wf-upstream-key-0003"
FULL_KEY = "verify18-wf-full-key-0004"
"""May call every module of the project."""
WORKFLOW_ONLY_KEY = "verify18-wf-only-key-0005"
"""May call the workflows, not the inference modules their nodes call."""
MODELS_KEY = "verify18-wf-models-key-0006"
"""May call everything, but only with one model: a workflow says no model, so it is refused."""
for _secret in (UPSTREAM_KEY, FULL_KEY, WORKFLOW_ONLY_KEY, MODELS_KEY):
    LEAKS.add_secret(_secret)

ESCAPES = {
    "tpl-attribute": "{0.__class__}",
    "tpl-index": "{document[0]}",
    "tpl-dunder": "{document.__class__.__mro__}",
    "tpl-conversion": "{document!r}",
    "tpl-spec": "{document:>999999999}",
    "tpl-positional": "{}",
    "tpl-unbalanced": "{document",
    "tpl-undeclared": "{secret_key}",
}
"""Workflow name -> a prompt template that must make the module unservable (503)."""


def _hash(key: str) -> str:
    return hmac.new(b"", key.encode(), hashlib.sha256).hexdigest()


def _llm(name: str, url: str) -> dict[str, Any]:
    return {
        "module_type": "inference_endpoint",
        "name": name,
        "config": {"model_name": "gpt-4o-mini", "endpoint_url": url},
    }


def _workflow(name: str, **config: Any) -> dict[str, Any]:
    return {
        "module_type": "langgraph_workflow",
        "name": name,
        "config": {"workflow_name": name, **config},
    }


def _one_llm_node(template: str, module: str = "llm") -> dict[str, Any]:
    return {
        "inference_modules": [module],
        "state_schema": {"document": "string", "final_summary": "string"},
        "nodes": [{"id": "ask", "type": "llm", "prompt_template": template}],
    }


def manifest(upstream: str) -> dict[str, Any]:
    chat = f"http://{upstream}/v1/chat/completions"
    closed = f"http://127.0.0.1:{free_port()}/v1/chat/completions"
    summarize = {
        "inference_modules": ["limited-llm"],
        "max_retries": 0,
        "state_schema": {
            "document": "string",
            "chunks": "array",
            "summaries": "array",
            "final_summary": "string",
        },
        "nodes": [
            {
                "id": "split",
                "type": "function",
                "function": "split_into_chunks",
                "config": {"chunk_size": 10, "chunk_overlap": 0},
            },
            {
                "id": "each",
                "type": "llm",
                "prompt_template": "Summarize: {chunk}",
                "config": {"parallel": True, "batch_size": 1},
            },
            # Not {summaries}: the stand-in echoes the upstream key in each answer, and an echo
            # quoted twice is past what the leak check knows to take out.
            {"id": "combine", "type": "llm", "prompt_template": "Combine: {document}"},
        ],
        "edges": [{"from": "split", "to": "each"}, {"from": "each", "to": "combine"}],
    }
    modules = [
        _llm("llm", chat),
        _llm("limited-llm", chat),
        _llm("gone-llm", closed),
        _workflow("summarize", **summarize),
        _workflow("plain", **_one_llm_node("Summarize: {document}")),
        _workflow("down", max_retries=1, **_one_llm_node("{document}", "gone-llm")),
        _workflow(
            "verdict",
            state_schema={
                "verdict": "string",
                "needs_improvement": {"type": "boolean", "required": False},
            },
            nodes=[
                {
                    "id": "read",
                    "type": "function",
                    "function": "extract_json",
                    "config": {"input": "verdict"},
                }
            ],
        ),
        _workflow(
            "carry",
            state_schema={
                "document": "string",
                "extra": {"type": "any", "required": False},
                "copied": "string",
            },
            nodes=[
                {
                    "id": "copy",
                    "type": "function",
                    "function": "copy",
                    "config": {"input": "document", "output": "copied"},
                }
            ],
        ),
        *(_workflow(name, **_one_llm_node(template)) for name, template in ESCAPES.items()),
    ]
    workflows = [m["name"] for m in modules if m["module_type"] == "langgraph_workflow"]
    everything = [m["name"] for m in modules]
    return {
        "project_id": PROJECT,
        "project_name": "verify18 workflows",
        "environment": "development",
        "environments": {"common": {"secrets": {"upstream": "env:VERIFY18_WF_UPSTREAM_KEY"}}},
        "modules": modules,
        "metadata": {
            "fd2": {
                "api_keys": [
                    {"id": "full", "hash": _hash(FULL_KEY), "modules": everything},
                    {"id": "wf-only", "hash": _hash(WORKFLOW_ONLY_KEY), "modules": workflows},
                    {"id": "models", "hash": _hash(MODELS_KEY), "models": ["gpt-4o-mini"]},
                ],
                "modules": {
                    **{
                        name: {"config": {"api_key": "${environments.common.secrets.upstream}"}}
                        for name in ("llm", "gone-llm")
                    },
                    "limited-llm": {
                        "config": {"api_key": "${environments.common.secrets.upstream}"},
                        "limits": {"requests_per_minute": 4},
                    },
                },
            }
        },
    }


@pytest.fixture(scope="module", name="gateway")
def gateway_fixture(
    tmp_path_factory: pytest.TempPathFactory, standin: Service
) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("verify18-workflows")
    manifests = root / "manifests"
    manifests.mkdir()
    (manifests / "verify-wf.json").write_text(json.dumps(manifest(standin.address), indent=2))
    port = free_port()
    argv = fd2_argv(
        "serve",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--manifests", str(manifests), "--default-env", "development"),
    )
    env = {**fd2_env(), "VERIFY18_WF_UPSTREAM_KEY": UPSTREAM_KEY}
    service = start_service(
        "fd2-verify18-wf", argv, port=port, ready_path="/healthz", log_dir=root, env=env
    )
    yield service
    service.stop()
