"""`langgraph_workflow` end to end: fd2 under Granian runs the worked summarizer manifest and
workflows built to fail, its `llm` nodes calling inference modules in process, which call the
OpenAI stand-in over real sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import Service, StandinStats, fd2_argv, fd2_env, free_port, start_service
from .support import assert_no_leak, assert_openai_error
from .workflow_support import (
    CLIENT_KEY,
    NARROW_KEY,
    PROJECT,
    WORKFLOW,
    WORKFLOW_ENV,
    workflow_manifest,
)

AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}
# 4000 characters: chunks of 2000 overlapping by 200 start at 0, 1800 and 3600.
DOCUMENT = "".join(f"sentence {i:04d} about gateways. " for i in range(140))[:4000]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, standin: Service) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("workflows")
    manifests = root / "manifests"
    manifests.mkdir()
    (manifests / "summarizer.json").write_text(json.dumps(workflow_manifest(standin.address)))
    port = free_port()
    env = fd2_env() | WORKFLOW_ENV
    argv = fd2_argv(
        "serve",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--manifests", str(manifests), "--default-env", "development"),
    )
    service = start_service(
        "fd2-workflows", argv, port=port, ready_path="/healthz", log_dir=root, env=env
    )
    yield service
    service.stop()


@pytest.fixture
def counts(standin_stats: StandinStats) -> StandinStats:
    """The stand-in's counters, zeroed after what earlier tests left running has ended."""
    standin_stats.settle()
    return standin_stats


def invoke(gateway: Service, module: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}/{PROJECT}/{module}/invoke", json=body, timeout=30, **kwargs)


def described(text: str) -> dict[str, Any]:
    """What the stand-in received, as it describes it in its answer."""
    value: dict[str, Any] = json.loads(text)
    return value


def test_the_summarizer_runs_its_llm_nodes_in_process(
    gateway: Service, counts: StandinStats
) -> None:
    response = invoke(
        gateway,
        WORKFLOW,
        {"document": DOCUMENT, "workflow_params": {}},
        headers={**AUTH, "x-request-id": "wf-run-1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "wf-run-1"
    state = response.json()
    assert [len(c) for c in state["chunks"]] == [2000, 2000, 400]
    meta = state["metadata"]
    assert meta["workflow_name"] == "document_summarizer"
    assert meta["num_chunks"] == 3 and meta["llm_calls"] == 4
    assert meta["nodes_run"] == ["split_document", "summarize_chunks", "combine_summaries"]
    # Each chunk's call: the node's template and max_tokens, the inference module's system
    # prompt and upstream key, the client's request id carried through.
    for chunk, summary in zip(state["chunks"], state["summaries"], strict=True):
        seen = described(summary)
        assert seen["messages"][0]["role"] == "system"
        assert seen["messages"][-1]["content"] == (
            "Provide a concise summary of the following text chunk:\n\n" + chunk
        )
        assert seen["max_tokens"] == 300 and seen["model"] == "gpt-4o-mini"
        assert seen["authorization"] == "Bearer test-summarizer-upstream-key"
        assert seen["x_request_id"] == "wf-run-1"
    final = described(state["final_summary"])
    assert final["max_tokens"] == 500
    assert final["messages"][-1]["content"] == (
        "Combine the following summaries into a single comprehensive summary:\n\n"
        + "\n\n".join(state["summaries"])
    )
    assert counts.get()["completed"] == 4
    assert_no_leak(response.content)


def test_the_inference_modules_auth_applies_to_each_call(
    gateway: Service, counts: StandinStats
) -> None:
    refused = invoke(gateway, WORKFLOW, {"document": "x"})
    assert refused.status_code == 401
    assert_openai_error(refused.content, status=401)
    wrong = invoke(gateway, WORKFLOW, {"document": "x"}, headers={"authorization": "Bearer no"})
    assert wrong.status_code == 401
    # A key that may call the workflow but not the inference module: the first model call is
    # refused by the inference module's own auth step, and nothing reaches the upstream.
    narrow = invoke(
        gateway, WORKFLOW, {"document": "x"}, headers={"authorization": f"Bearer {NARROW_KEY}"}
    )
    assert narrow.status_code == 403
    error = assert_openai_error(narrow.content, status=403)
    assert "workflow node 'summarize_chunks'" in error["message"]
    assert "'summarize-llm' answered 403" in error["message"]
    assert counts.get()["started"] == 0


def test_input_is_checked_against_the_state_schema(gateway: Service) -> None:
    missing = invoke(gateway, WORKFLOW, {}, headers=AUTH)
    assert missing.status_code == 400
    assert assert_openai_error(missing.content)["param"] == "document"
    wrong = invoke(gateway, WORKFLOW, {"document": 3}, headers=AUTH)
    assert wrong.status_code == 400
    error = assert_openai_error(wrong.content)
    assert error["param"] == "document" and "string" in error["message"]
    unknown = invoke(gateway, WORKFLOW, {"document": "x", "secret_plan": 1}, headers=AUTH)
    assert unknown.status_code == 400
    assert assert_openai_error(unknown.content)["param"] == "secret_plan"
    assert "x-request-id" in unknown.headers


def test_a_streamed_run_sends_each_node_then_the_final_state(gateway: Service) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/{PROJECT}/{WORKFLOW}/invoke",
        json={"document": DOCUMENT[:2500], "stream": True},
        headers=AUTH,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert [(e["type"], e.get("node")) for e in events] == [
        ("node", "split_document"),
        ("node", "summarize_chunks"),
        ("node", "combine_summaries"),
        ("final", None),
    ]
    assert len(events[1]["update"]["summaries"]) == 2
    assert events[-1]["state"]["final_summary"] == events[2]["update"]["final_summary"]


def test_a_client_that_leaves_mid_stream_cancels_the_run_and_its_model_calls(
    gateway: Service, counts: StandinStats
) -> None:
    with httpx.stream(
        "POST",
        f"{gateway.url}/{PROJECT}/slow-chunks/invoke",
        json={"document": "a" * 30, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "event: node"
        assert json.loads(next(lines)[len("data: ") :])["node"] == "split"
        # The three chunks' model calls are now waiting on the stand-in; leave.
        deadline = time.monotonic() + 5
        while counts.get()["started"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    deadline = time.monotonic() + 5
    while counts.get()["cancelled"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts.get() | {"open_streams": 0} == {
        "started": 3,
        "completed": 0,
        "cancelled": 3,
        "open_streams": 0,
    }


def test_accept_event_stream_asks_for_a_stream_too(gateway: Service) -> None:
    response = invoke(gateway, "counter", {}, headers={"accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")
    assert response.text.count("event: node") == 3


def test_a_conditional_cycle_runs_until_its_condition_fails(gateway: Service) -> None:
    response = invoke(gateway, "counter", {"n": 0})
    assert response.status_code == 200, response.text
    assert response.json()["n"] == 3
    assert response.json()["metadata"]["steps"] == 3


def test_a_cycle_that_never_ends_is_stopped_by_max_iterations(
    gateway: Service, counts: StandinStats
) -> None:
    response = invoke(gateway, "endless", {"question": "why?"})
    assert response.status_code == 500
    error = assert_openai_error(response.content, status=500)
    assert error["code"] == "workflow_max_iterations"
    assert "'ask'" in error["message"] and "max_iterations (3)" in error["message"]
    assert counts.get()["completed"] == 3  # three model calls, no fourth


def test_the_whole_run_is_bounded_by_timeout_seconds(
    gateway: Service, counts: StandinStats
) -> None:
    started = time.monotonic()
    response = invoke(gateway, "slow", {"document": "wait"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    error = assert_openai_error(response.content, status=504)
    assert error["code"] == "workflow_timeout" and "timeout_seconds (1 s)" in error["message"]
    assert elapsed < 2.5
    # The model call was abandoned with the run: the stand-in saw its client go away.
    deadline = time.monotonic() + 5
    while counts.get()["cancelled"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts.get()["cancelled"] == 1


def test_a_streamed_timeout_ends_with_an_error_event(gateway: Service) -> None:
    response = invoke(gateway, "slow", {"document": "wait", "stream": True})
    assert response.status_code == 200
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2][len("data: ") :])
    assert error["type"] == "error" and error["status"] == 504
    assert error["error"]["code"] == "workflow_timeout"


def test_a_failing_llm_node_is_retried_then_named_in_a_502(
    gateway: Service, counts: StandinStats
) -> None:
    response = invoke(gateway, "failing", {"document": "doomed"})
    assert response.status_code == 502
    error = assert_openai_error(response.content, status=502)
    assert error["code"] == "workflow_node_failed"
    assert "workflow node 'summarize'" in error["message"]
    assert "'plain-llm'" in error["message"] and "after 3 attempts" in error["message"]
    assert counts.get()["completed"] == 3  # one call and max_retries (2) more


def test_a_request_the_model_refuses_is_not_retried(gateway: Service, counts: StandinStats) -> None:
    response = invoke(gateway, "refused", {"document": "no"})
    assert response.status_code == 502
    error = assert_openai_error(response.content, status=502)
    assert "answered 400" in error["message"] and "stand-in says no" in error["message"]
    assert counts.get()["completed"] == 1


def test_the_inference_modules_rate_limit_counts_each_model_call(
    gateway: Service, counts: StandinStats
) -> None:
    # Three chunks, three model calls, against a module allowing two requests a minute.
    response = invoke(gateway, "limited", {"document": "a" * 30})
    assert response.status_code == 429
    error = assert_openai_error(response.content, status=429)
    assert "workflow node 'each'" in error["message"] and "'limited-llm'" in error["message"]
    assert counts.get()["completed"] == 2


def test_a_template_that_reaches_for_attributes_is_refused(gateway: Service) -> None:
    response = invoke(gateway, "escape", {"document": "x"})
    assert response.status_code == 503
    error = assert_openai_error(response.content, status=503)
    assert "{document.__class__.__mro__}" in error["message"]
    assert "__mro__" not in response.text.replace("{document.__class__.__mro__}", "")


def test_state_values_are_never_read_as_templates(gateway: Service) -> None:
    text = "{chunk.__class__} {0} {summaries[0]} {{ }}"
    response = invoke(gateway, WORKFLOW, {"document": text}, headers=AUTH)
    assert response.status_code == 200, response.text
    seen = described(response.json()["summaries"][0])
    assert seen["messages"][-1]["content"].endswith("\n\n" + text)


def test_other_methods_are_refused(gateway: Service) -> None:
    response = httpx.get(f"{gateway.url}/{PROJECT}/{WORKFLOW}/invoke", timeout=10)
    assert response.status_code == 405
    assert_openai_error(response.content, status=405)
