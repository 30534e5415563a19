"""The Control Tower's own paths for typed modules, `/{project}/rag/{module}/…` (and `models`,
`workflow`), served next to fd2's `/{project}/{module}/…`, for a module of the matching type."""

from __future__ import annotations

import httpx

from .conftest import Service
from .devkit_services import devkit_fixture, seen  # noqa: F401

Devkit = dict[str, Service]
QUERY = {"query": "What is machine learning?"}


def post(devkit: Devkit, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{devkit['fd2'].url}{path}", json=body, timeout=20)


def test_a_rag_module_answers_on_the_control_towers_path(devkit: Devkit) -> None:
    typed = post(devkit, "/kb/rag/knowledge-base/query", QUERY)
    plain = post(devkit, "/kb/knowledge-base/query", QUERY)
    assert typed.status_code == plain.status_code == 200, typed.text
    assert typed.json()["configuration_name"] == plain.json()["configuration_name"]
    assert seen(devkit["rag"])[-1]["path"] == "/api/v1/query"


def test_a_typed_path_reaches_only_a_module_of_that_type(devkit: Devkit) -> None:
    # keyed-models is a model_server: not reachable as a RAG module.
    wrong = post(devkit, "/kb/rag/keyed-models/embeddings", {"texts": ["x"]})
    assert wrong.status_code == 404, wrong.text
    assert wrong.json()["error"]["message"] == "Unknown module 'rag' in project 'kb'."
    assert wrong.headers.get("x-request-id")
    missing = post(devkit, "/kb/rag/nothing-here/query", QUERY)
    assert missing.status_code == 404
    hostile = post(devkit, "/kb/rag/..%2Fsecure-kb/query", QUERY)
    assert hostile.status_code == 404


def test_a_module_named_like_a_prefix_keeps_its_own_path(devkit: Devkit) -> None:
    # The project has a module called `models`: /kb/models/... is that module, as always.
    own = post(devkit, "/kb/models/embeddings", {"texts": ["hello"]})
    assert own.status_code == 200, own.text
    assert post(devkit, "/kb/models/keyed-models/embeddings", {"texts": ["x"]}).status_code == 404
