"""Runs of compiled graphs with a model that answers at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fd2_workflows.errors import IterationsExceeded, NodeFailed, TooManyItems
from fd2_workflows.executor import run_graph
from fd2_workflows.functions import Updates

from .support import Model, build, fn, llm

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/manifests/langgraph-summarizer.json"


def example_config() -> dict[str, Any]:
    manifest = json.loads(EXAMPLE.read_text())
    entry = next(m for m in manifest["modules"] if m["module_type"] == "langgraph_workflow")
    config: dict[str, Any] = entry["config"]
    return config


async def test_the_summarizer() -> None:
    config = example_config()
    config.pop("workflow_name")
    graph, schema = build(**config)
    model = Model()
    events: list[tuple[int, str, list[str]]] = []

    async def on_node(step: int, node: str, updates: Updates) -> None:
        events.append((step, node, sorted(updates)))

    document = "abcdefghij" * 250  # 2500 characters: two chunks
    state, facts = await run_graph(
        graph,
        schema.initial({"document": document}),
        call_model=model,
        max_iterations=10,
        on_node=on_node,
    )
    prefix = "Provide a concise summary of the following text chunk:\n\n"
    assert state["summaries"] == [prefix + document[:2000] + "!", prefix + document[1800:] + "!"]
    assert state["final_summary"].startswith("Combine the following summaries")
    assert state["final_summary"].endswith("\n\n".join(state["summaries"]) + "!")
    assert [b.get("max_tokens") for b in model.bodies] == [300, 300, 500]
    assert facts == {
        "num_chunks": 2,
        "steps": 3,
        "nodes_run": ["split_document", "summarize_chunks", "combine_summaries"],
    }
    assert events == [
        (1, "split_document", ["chunks"]),
        (2, "summarize_chunks", ["summaries"]),
        (3, "combine_summaries", ["final_summary"]),
    ]


async def test_parallel_items_keep_their_order_and_batch_size_bounds_concurrency() -> None:
    graph, schema = build(
        state_schema={"chunks": "array", "summaries": "array"},
        nodes=[llm("each", "<{chunk}>", parallel=True, batch_size=3)],
    )
    model = Model(delay=0.01)
    state, _ = await run_graph(
        graph,
        schema.initial({"chunks": [str(i) for i in range(10)]}),
        call_model=model,
        max_iterations=10,
    )
    assert state["summaries"] == [f"<{i}>!" for i in range(10)]
    assert model.most == 3


async def test_a_parallel_node_refuses_more_items_than_its_max_items_before_any_call() -> None:
    graph, schema = build(
        state_schema={"chunks": "array", "summaries": "array"},
        nodes=[llm("each", "<{chunk}>", parallel=True, max_items=5)],
    )
    model = Model()
    with pytest.raises(TooManyItems) as refused:
        await run_graph(
            graph,
            schema.initial({"chunks": [str(i) for i in range(6)]}),
            call_model=model,
            max_iterations=10,
        )
    assert refused.value.status == 400 and "at most 5" in refused.value.message
    assert model.bodies == []


async def test_fan_out_runs_branches_together_and_merges_in_node_order() -> None:
    graph, schema = build(
        workflow_type="parallel",
        state_schema={"q": "string", "a": "string", "b": "string", "both": "string"},
        nodes=[
            llm("left", "L {q}", output="a"),
            llm("right", "R {q}", output="b"),
            fn("join", "join", input="a", output="both"),
        ],
        edges=[
            {"from": "START", "to": "left"},
            {"from": "START", "to": "right"},
            {"from": "left", "to": "join"},
            {"from": "right", "to": "join"},
        ],
    )
    model = Model(delay=0.02)
    state, facts = await run_graph(
        graph, schema.initial({"q": "?"}), call_model=model, max_iterations=10
    )
    assert model.most == 2  # both branches were in flight at once
    assert (state["a"], state["b"], state["both"]) == ("L ?!", "R ?!", "L ?!")
    assert facts["nodes_run"] == ["left", "right", "join"] and facts["steps"] == 2


async def test_a_refinement_loop_ends_on_the_models_verdict() -> None:
    verdicts = iter(['{"again": true}', '{"again": true}', '{"again": false}'])

    async def judge(node: str, module: str, body: Any) -> str:
        return next(verdicts)

    graph, schema = build(
        workflow_type="conditional",
        state_schema={"text": "string", "verdict": "string", "again": "boolean"},
        nodes=[
            llm("evaluate", "Judge {text}", output="verdict"),
            fn("read", "extract_json", input="verdict"),
        ],
        edges=[
            {"from": "evaluate", "to": "read"},
            {"from": "read", "to": "evaluate", "condition": "again"},
        ],
    )
    state, facts = await run_graph(
        graph, schema.initial({"text": "t"}), call_model=judge, max_iterations=5
    )
    assert state["again"] is False and facts["steps"] == 6


async def test_max_iterations_stops_a_cycle_that_does_not_end() -> None:
    graph, schema = build(
        workflow_type="conditional",
        state_schema={"n": "integer"},
        nodes=[fn("count", "increment", field="n")],
        edges=[
            {"from": "count", "to": "count", "condition": {"field": "n", "op": "ge", "value": 0}}
        ],
    )
    with pytest.raises(
        IterationsExceeded, match=r"'count' would run more than max_iterations \(4\)"
    ):
        await run_graph(graph, schema.initial({"n": 0}), call_model=Model(), max_iterations=4)


async def test_one_failing_branch_cancels_the_others() -> None:
    cancelled = []

    async def model(node: str, module: str, body: Any) -> str:
        if node == "bad":
            raise NodeFailed(node, "no")
        try:
            import asyncio

            await asyncio.sleep(10)
        except BaseException:
            cancelled.append(node)
            raise
        return ""

    graph, schema = build(
        workflow_type="parallel",
        state_schema={"a": "string", "b": "string"},
        nodes=[llm("bad", "x", output="a"), llm("slow", "y", output="b")],
    )
    with pytest.raises(NodeFailed, match="workflow node 'bad' failed: no"):
        await run_graph(graph, schema.initial({}), call_model=model, max_iterations=3)
    assert cancelled == ["slow"]
