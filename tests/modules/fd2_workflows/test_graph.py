"""What a workflow config may say: checked once, at set-up (a ConfigError answers 503)."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.serving.errors import ConfigError
from fd2_workflows.config import load_config

from .support import build, fn, llm


def refused(match: str, **config: Any) -> None:
    with pytest.raises(ConfigError, match=match):
        build(**config)


def test_the_control_towers_defaults() -> None:
    config = load_config({"workflow_name": "w", "nodes": [fn("a", "copy", input="x", output="y")]})
    assert config.workflow_type == "sequential"
    assert (config.max_iterations, config.timeout_seconds) == (10, 300)
    assert (config.retry_on_error, config.max_retries) == (True, 3)
    assert (
        load_config(
            {
                **{"workflow_name": "w", "nodes": [{"id": "a", "type": "llm"}]},
                "some_future_ct_field": 1,
            }
        )
        .nodes[0]
        .id
        == "a"
    )


def test_config_errors_name_what_is_wrong() -> None:
    refused("no nodes", nodes=[])
    refused("checkpoint", nodes=[fn("a", "join")], enable_checkpointing=True)
    refused("workflow_type", nodes=[fn("a", "join")], workflow_type="swarm")
    refused("unknown function 'os.system'", nodes=[fn("a", "os.system")])
    refused(r"\$\.nodes\[0\]", nodes=[{"id": "a", "type": "function", "fucntion": "join"}])
    refused(
        "chunk_overlap must be smaller", nodes=[fn("a", "split_into_chunks", chunk_overlap=5000)]
    )
    refused("used twice", nodes=[fn("a", "join"), fn("a", "join")])
    refused("reserved", nodes=[fn("END", "join")])


def test_llm_nodes_only_call_their_dependencies() -> None:
    with pytest.raises(ConfigError, match="'other', which is not a dependency"):
        build(nodes=[{**llm("a", "{x}"), "inference_module": "other"}], inference_modules=["llm"])
    refused(
        "names its inference_module", nodes=[{"id": "a", "type": "llm", "prompt_template": "x"}]
    )


def test_writes_and_template_fields_must_be_declared() -> None:
    schema = {"document": "string", "final_summary": "string"}
    refused("writes 'summary'", state_schema=schema, nodes=[fn("a", "join", output="summary")])
    refused("names nope", state_schema=schema, nodes=[llm("a", "{nope}")])
    refused(
        "writes 'metadata'", state_schema={}, nodes=[fn("a", "copy", input="x", output="metadata")]
    )


def test_edges_and_workflow_types() -> None:
    nodes = [
        fn("a", "increment", field="n"),
        fn("b", "increment", field="n"),
        fn("c", "increment", field="n"),
    ]
    refused("names no node", nodes=nodes, edges=[{"from": "a", "to": "z"}])
    refused(
        "a sequential workflow is a chain",
        nodes=nodes,
        edges=[{"from": "a", "to": "b"}, {"from": "a", "to": "c"}],
    )
    refused(
        "conditions need workflow_type 'conditional'",
        nodes=nodes,
        workflow_type="parallel",
        edges=[{"from": "a", "to": "b", "condition": "n"}, {"from": "b", "to": "c"}],
    )
    refused(
        "cycle that can never end: a -> b -> a",
        nodes=nodes[:2],
        workflow_type="parallel",
        edges=[{"from": "a", "to": "b"}, {"from": "b", "to": "a"}],
    )
    refused("c can never run", nodes=nodes, edges=[{"from": "a", "to": "b"}])
    graph, _ = build(
        nodes=nodes,
        workflow_type="conditional",
        edges=[
            {"from": "START", "to": "a"},
            {"from": "a", "to": "b"},
            {"from": "b", "to": "a", "condition": "again"},
            {"from": "b", "to": "c"},
            {"from": "c", "to": "END"},
        ],
    )
    assert graph.entry == ("a",)
    assert graph.successors("b", {"again": True}) == ["a"]
    assert graph.successors("b", {"again": False}) == ["c"]
    assert graph.successors("c", {}) == []


def test_without_edges_nodes_run_in_order_or_all_at_once() -> None:
    nodes = [fn("a", "increment", field="n"), fn("b", "increment", field="m")]
    sequential, _ = build(nodes=nodes)
    assert sequential.entry == ("a",) and sequential.successors("a", {}) == ["b"]
    parallel, _ = build(nodes=nodes, workflow_type="parallel")
    assert parallel.entry == ("a", "b")
