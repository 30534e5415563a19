"""Micro-benchmark: the summarizer workflow run by fd2's executor against the `langgraph` library.

The graph is the Control Tower's sample (split into chunks, summarize each chunk in parallel,
combine), with the model calls replaced by an `async` function answering at once, so what is
measured is each executor's own cost per run. Both must produce the same final state. The import
cost is measured in fresh interpreters (what a worker pays when it first serves the module type).
Figures and the decision: docs/workflows.md. Run with `make bench-micro`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from pytest_benchmark.fixture import BenchmarkFixture

from fd2_workflows.config import load_config
from fd2_workflows.executor import run_graph
from fd2_workflows.graph import Graph, compile_graph
from fd2_workflows.state import StateSchema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples/manifests/langgraph-summarizer.json"
DOCUMENT = "word " * 1200  # 6000 characters: 4 chunks of 2000 overlapping by 200
CHUNKS = 4


async def fake_model(node: str, module: str, body: Mapping[str, Any]) -> str:
    return "summary of " + str(len(body["messages"][-1]["content"]))


def native_graph() -> Graph:
    manifest = json.loads(EXAMPLE.read_text())
    entry = next(m for m in manifest["modules"] if m["module_type"] == "langgraph_workflow")
    config = load_config(entry["config"])
    schema = StateSchema(config.state_schema)
    return compile_graph(config, schema, config.inference_modules)


class SummaryState(TypedDict):
    document: str
    chunks: list[str]
    summaries: list[str]
    final_summary: str


def langgraph_graph() -> Any:
    """The same graph written for langgraph, as its documents write one."""

    async def split(state: SummaryState) -> dict[str, Any]:
        text, chunks, start = state["document"], [], 0
        while start < len(text):
            chunks.append(text[start : start + 2000])
            if start + 2000 >= len(text):
                break
            start += 1800
        return {"chunks": chunks}

    async def summarize(state: SummaryState) -> dict[str, Any]:
        prompt = "Provide a concise summary of the following text chunk:\n\n{chunk}"
        answers = await asyncio.gather(
            *(
                fake_model("s", "m", {"messages": [{"content": prompt.format(chunk=c)}]})
                for c in state["chunks"]
            )
        )
        return {"summaries": list(answers)}

    async def combine(state: SummaryState) -> dict[str, Any]:
        prompt = "Combine the following summaries into a single comprehensive summary:\n\n"
        text = prompt + "\n\n".join(state["summaries"])
        return {"final_summary": await fake_model("c", "m", {"messages": [{"content": text}]})}

    graph = StateGraph(SummaryState)
    graph.add_node("split_document", split)
    graph.add_node("summarize_chunks", summarize)
    graph.add_node("combine_summaries", combine)
    graph.add_edge(START, "split_document")
    graph.add_edge("split_document", "summarize_chunks")
    graph.add_edge("summarize_chunks", "combine_summaries")
    graph.add_edge("combine_summaries", END)
    return graph.compile()


def initial() -> dict[str, Any]:
    return {"document": DOCUMENT, "chunks": [], "summaries": [], "final_summary": ""}


@pytest.fixture(scope="module")
def loop() -> Any:
    runner = asyncio.Runner()
    yield runner
    runner.close()


def test_both_give_the_same_final_state(loop: asyncio.Runner) -> None:
    native, _ = loop.run(
        run_graph(native_graph(), initial(), call_model=fake_model, max_iterations=10)
    )
    other = loop.run(langgraph_graph().ainvoke(initial()))
    assert len(native["chunks"]) == CHUNKS
    assert {k: native[k] for k in other} == dict(other)


def test_run_native(benchmark: BenchmarkFixture, loop: asyncio.Runner) -> None:
    graph = native_graph()
    benchmark(
        lambda: loop.run(run_graph(graph, initial(), call_model=fake_model, max_iterations=10))
    )


def test_run_langgraph(benchmark: BenchmarkFixture, loop: asyncio.Runner) -> None:
    graph = langgraph_graph()
    benchmark(lambda: loop.run(graph.ainvoke(initial())))


def test_compile_native(benchmark: BenchmarkFixture) -> None:
    benchmark(native_graph)


def test_compile_langgraph(benchmark: BenchmarkFixture) -> None:
    benchmark(langgraph_graph)


_BASE = "import fd2.module"  # loaded in every worker anyway
_IMPORTS = {
    "native": "import fd2_workflows",
    "langgraph": "import langgraph.graph",
}


def _import_seconds(statement: str, rounds: int = 5) -> float:
    code = (
        f"{_BASE}\nimport time\nt = time.perf_counter()\n{statement}\n"
        "print(time.perf_counter() - t)"
    )
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(rounds)
    ]
    return statistics.median(times)


def test_import_cost() -> None:
    costs = {name: _import_seconds(statement) for name, statement in _IMPORTS.items()}
    print("\nimport cost after fd2.module (median of 5 fresh interpreters):")
    for name, seconds in costs.items():
        print(f"  {name:10s} {seconds * 1000:8.1f} ms")
    assert costs["native"] < costs["langgraph"]
