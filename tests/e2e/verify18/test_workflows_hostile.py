"""langgraph_workflow under hostile input, through fd2 under Granian, its llm nodes calling
inference modules in process, which call the OpenAI stand-in over loopback."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from ..conftest import Service, StandinStats
from ..support import assert_openai_error
from .workflow_project import (
    ESCAPES,
    FULL_KEY,
    MODELS_KEY,
    PROJECT,
    UPSTREAM_KEY,
    WORKFLOW_ONLY_KEY,
    gateway_fixture,
)

__all__ = ["gateway_fixture"]

FULL = {"authorization": f"Bearer {FULL_KEY}"}


def invoke(
    gateway: Service, workflow: str, body: Any, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    url = f"{gateway.url}/{PROJECT}/{workflow}/invoke"
    headers = FULL if headers is None else headers
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers=headers, timeout=30)
    return httpx.post(url, json=body, headers=headers, timeout=30)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers.get("x-request-id")
    assert "Traceback" not in response.text and UPSTREAM_KEY not in response.text
    return assert_openai_error(response.content, status=status)


@pytest.fixture
def counts(standin_stats: StandinStats) -> StandinStats:
    standin_stats.settle()
    return standin_stats


@pytest.mark.parametrize("workflow", sorted(ESCAPES))
def test_a_template_that_is_more_than_field_names_makes_the_module_unservable(
    gateway: Service, workflow: str, counts: StandinStats
) -> None:
    error = error_of(invoke(gateway, workflow, {"document": "x"}), 503)
    assert error["code"] == "module_unavailable"
    assert "prompt_template" in error["message"]
    assert counts.get()["started"] == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"[1, 2]", None),
        (b'"a document"', None),
        (b"42", None),
        (b"null", None),
        (b"{broken", None),
        ({"document": 5}, "document"),
        ({"document": ["a"]}, "document"),
        ({"document": None}, "document"),
        ({"document": "x", "metadata": {}}, "metadata"),
        ({"document": "x", "workflow_params": "all"}, "workflow_params"),
        ({"document": "x", "stream": "yes"}, "stream"),
        ({"document": "x", "__class__": "y"}, "__class__"),
        ({}, "document"),
    ],
)
def test_a_state_that_is_not_the_schemas_is_a_400(
    gateway: Service, body: Any, param: str | None, counts: StandinStats
) -> None:
    error = error_of(invoke(gateway, "plain", body), 400)
    if param is not None:
        assert error["param"] == param
    assert counts.get()["started"] == 0


def test_a_value_nested_deeper_than_the_state_allows_is_a_400(gateway: Service) -> None:
    deep = b'{"a":' * 300 + b"1" + b"}" * 300
    body = b'{"document":"x","extra":' + deep + b"}"
    error = error_of(invoke(gateway, "carry", body), 400)
    assert error["param"] == "extra" and "nested" in error["message"]
    shallow = invoke(gateway, "carry", {"document": "x", "extra": {"a": [{"b": 1}]}})
    assert shallow.status_code == 200, shallow.text
    assert shallow.json()["copied"] == "x" and shallow.json()["extra"] == {"a": [{"b": 1}]}


@pytest.mark.parametrize(
    "verdict",
    [
        "[" * 200_000,  # every opening starts a parse that fails
        ("[" * 500 + "x") * 400,  # each opening parses 500 deep before failing
        "{" * 150_000 + "}",
    ],
)
def test_extract_json_over_hostile_text_fails_fast_and_clearly(
    gateway: Service, verdict: str
) -> None:
    started = time.monotonic()
    error = error_of(invoke(gateway, "verdict", {"verdict": verdict}), 502)
    assert time.monotonic() - started < 5
    assert error["code"] == "workflow_node_failed" and "'read'" in error["message"]


def test_extract_json_of_a_value_too_deep_for_the_state(gateway: Service) -> None:
    error = error_of(invoke(gateway, "verdict", {"verdict": "[" * 300 + "]" * 300}), 502)
    assert "nested" in error["message"]
    fine = invoke(gateway, "verdict", {"verdict": 'Sure: {"needs_improvement": true} done'})
    assert fine.status_code == 200, fine.text
    assert fine.json()["needs_improvement"] is True


def test_the_inference_modules_limit_is_spent_by_each_model_call(
    gateway: Service, counts: StandinStats
) -> None:
    """limited-llm allows 4 requests a minute. 15 characters in chunks of 10: two chunk calls
    and one to combine, so the first run spends 3; the second gets one more call, then 429."""
    first = invoke(gateway, "summarize", {"document": "a" * 15})
    assert first.status_code == 200, first.text
    assert first.json()["metadata"]["llm_calls"] == 3
    second = invoke(gateway, "summarize", {"document": "b" * 15})
    error = error_of(second, 429)
    assert "'each'" in error["message"] and "'limited-llm'" in error["message"]
    assert counts.get()["completed"] == 4
    # The same module over HTTP is out of requests too: one bucket for both ways in.
    direct = httpx.post(
        f"{gateway.url}/{PROJECT}/limited-llm/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers=FULL,
        timeout=10,
    )
    error_of(direct, 429)


def test_a_key_for_the_workflow_alone_cannot_make_its_model_calls(
    gateway: Service, counts: StandinStats
) -> None:
    narrow = {"authorization": f"Bearer {WORKFLOW_ONLY_KEY}"}
    error = error_of(invoke(gateway, "plain", {"document": "x"}, headers=narrow), 403)
    assert "'ask'" in error["message"] and "'llm'" in error["message"]
    assert counts.get()["started"] == 0
    direct = httpx.post(
        f"{gateway.url}/{PROJECT}/llm/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers=narrow,
        timeout=10,
    )
    error_of(direct, 403)


def test_a_key_limited_to_models_cannot_run_a_workflow(gateway: Service) -> None:
    models_only = {"authorization": f"Bearer {MODELS_KEY}"}
    error_of(invoke(gateway, "plain", {"document": "x"}, headers=models_only), 403)


def test_no_credential_and_a_wrong_one(gateway: Service) -> None:
    error_of(invoke(gateway, "plain", {"document": "x"}, headers={}), 401)
    error_of(invoke(gateway, "plain", {"document": "x"}, headers={"x-api-key": "nope"}), 401)


def test_the_control_towers_typed_path_runs_the_workflow(gateway: Service) -> None:
    response = httpx.post(
        f"{gateway.url}/{PROJECT}/workflow/plain",
        json={"document": "typed"},
        headers=FULL,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    sent = json.loads(response.json()["final_summary"])
    assert sent["messages"][-1]["content"] == "Summarize: typed"
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the module's key, not the caller's
    wrong_type = httpx.post(
        f"{gateway.url}/{PROJECT}/rag/plain", json={"document": "x"}, headers=FULL, timeout=10
    )
    error_of(wrong_type, 404)


def test_an_unreachable_model_is_a_502_naming_the_node(gateway: Service) -> None:
    error = error_of(invoke(gateway, "down", {"document": "x"}), 502)
    assert error["code"] == "workflow_node_failed"
    assert "'ask'" in error["message"] and "'gone-llm'" in error["message"]


def test_a_streamed_failure_ends_with_an_error_event(gateway: Service) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/{PROJECT}/down/invoke",
        json={"document": "x", "stream": True},
        headers=FULL,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("x-request-id")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    event = json.loads(lines[-2][len("data: ") :])
    assert event["type"] == "error" and event["status"] == 502
    assert set(event["error"]) == {"message", "type", "code", "param"}
