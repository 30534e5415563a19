"""The workflow tests' manifest: the worked example (examples/manifests/langgraph-summarizer.json)
pointed at the OpenAI stand-in, plus workflows that exercise cycles, time limits, retries, an
inference module's rate limit and a template that tries to escape."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from .conftest import EXAMPLE_MANIFESTS, EXAMPLE_UPSTREAM
from .leaks import LEAKS

EXAMPLE = EXAMPLE_MANIFESTS / "langgraph-summarizer.json"
PROJECT = "langgraph-summarizer"
WORKFLOW = "doc-summarizer-workflow"
CLIENT_KEY = "fd2-summarizer-example-key-0001"  # the example's api_keys hash is of this key
NARROW_KEY = "fd2-summarizer-workflow-only-key-0002"
"""A key for the workflow alone, not for the inference module its nodes call."""
WORKFLOW_ENV = {
    "SUMMARIZER_UPSTREAM_API_KEY": "test-summarizer-upstream-key",
    "SUMMARIZER_JWT_SECRET": "summarizer-jwt-secret-for-tests-0123456789",
}
for _value in (CLIENT_KEY, NARROW_KEY, *WORKFLOW_ENV.values()):
    LEAKS.add_secret(_value)

OPEN = {"mode": "none"}


def example(upstream: str) -> dict[str, Any]:
    text = EXAMPLE.read_text().replace(EXAMPLE_UPSTREAM, upstream)
    manifest: dict[str, Any] = json.loads(text)
    return manifest


def _llm(name: str, **limits: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "module_type": "inference_endpoint",
        "name": name,
        "auth": OPEN,
        "config": {
            "model_name": "gpt-4o-mini",
            "endpoint_url": "${environments.${environment}.urls.llm}/chat/completions",
            "api_key": "${environments.common.secrets.upstream_api_key}",
        },
    }
    if limits:
        entry["limits"] = limits
    return entry


def _workflow(name: str, **config: Any) -> dict[str, Any]:
    return {
        "module_type": "langgraph_workflow",
        "name": name,
        "auth": OPEN,
        "config": {"workflow_name": name, **config},
    }


def _summarize(model: str, **config: Any) -> dict[str, Any]:
    """A one-node workflow asking `plain-llm` with `model` (the stand-in's behaviour switch)."""
    return {
        "inference_modules": ["plain-llm"],
        "state_schema": {"document": "string", "final_summary": "string"},
        "nodes": [
            {
                "id": "summarize",
                "type": "llm",
                "prompt_template": "Summarize: {document}",
                "config": {"model": model},
            }
        ],
        **config,
    }


def workflow_manifest(upstream: str) -> dict[str, Any]:
    manifest = example(upstream)
    narrow = hmac.new(b"", NARROW_KEY.encode(), hashlib.sha256).hexdigest()
    manifest["metadata"]["fd2"]["api_keys"].append(
        {"id": "workflow-only", "hash": narrow, "modules": ["doc-summarizer-workflow"]}
    )
    modules = manifest["modules"]
    modules += [
        _llm("plain-llm"),
        _llm("limited-llm", requests_per_minute=2),
        _workflow(
            "counter",
            workflow_type="conditional",
            state_schema={"n": "integer"},
            nodes=[
                {
                    "id": "count",
                    "type": "function",
                    "function": "increment",
                    "config": {"field": "n"},
                }
            ],
            edges=[
                {
                    "from": "count",
                    "to": "count",
                    "condition": {"field": "n", "op": "lt", "value": 3},
                }
            ],
        ),
        _workflow(
            "endless",
            workflow_type="conditional",
            max_iterations=3,
            inference_modules=["plain-llm"],
            state_schema={"question": "string", "answer": "string"},
            nodes=[
                {
                    "id": "ask",
                    "type": "llm",
                    "prompt_template": "Improve: {question} {answer}",
                    "config": {"output": "answer"},
                }
            ],
            # The stand-in always answers: the condition always holds.
            edges=[{"from": "ask", "to": "ask", "condition": "answer"}],
        ),
        _workflow("slow", timeout_seconds=1, **_summarize("slow-3000")),
        _workflow("failing", max_retries=2, **_summarize("error-500-plain")),
        _workflow("refused", max_retries=2, **_summarize("error-400")),
        _workflow(
            "limited",
            inference_modules=["limited-llm"],
            max_retries=1,
            state_schema={"document": "string", "chunks": "array", "summaries": "array"},
            nodes=[
                {
                    "id": "split",
                    "type": "function",
                    "function": "split_into_chunks",
                    "config": {"chunk_size": 10, "chunk_overlap": 0},
                },
                {
                    "id": "each",
                    "type": "llm",
                    "prompt_template": "{chunk}",
                    "config": {"parallel": True, "batch_size": 1},
                },
            ],
        ),
        _workflow(
            "slow-chunks",
            inference_modules=["plain-llm"],
            state_schema={"document": "string", "chunks": "array", "summaries": "array"},
            nodes=[
                {
                    "id": "split",
                    "type": "function",
                    "function": "split_into_chunks",
                    "config": {"chunk_size": 10, "chunk_overlap": 0},
                },
                {
                    "id": "each",
                    "type": "llm",
                    "prompt_template": "{chunk}",
                    "config": {"parallel": True, "model": "slow-5000"},
                },
            ],
        ),
        _workflow(
            "escape",
            **{
                **_summarize("gpt-4o-mini"),
                "nodes": [
                    {"id": "leak", "type": "llm", "prompt_template": "{document.__class__.__mro__}"}
                ],
            },
        ),
    ]
    return manifest
