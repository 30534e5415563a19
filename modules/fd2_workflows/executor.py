"""Runs a compiled workflow graph over a state, step by step.

Each step runs its nodes concurrently on the same state (none sees another's writes), then merges
what they wrote in the nodes' manifest order and picks the next step's nodes from their edges.
A node asked to run more than `max_iterations` times stops the run (a cycle that did not end);
an acyclic workflow never meets the bound. The whole-run time limit is the caller's (the module
wraps this in `timeout_seconds`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fd2_workflows.concurrency import all_or_first_error
from fd2_workflows.errors import IterationsExceeded
from fd2_workflows.functions import Updates
from fd2_workflows.graph import Graph
from fd2_workflows.llm import ModelCaller
from fd2_workflows.state import METADATA

NodeDone = Callable[[int, str, Updates], Awaitable[None]]
"""Told after each node of a step: the step number, the node, what it wrote."""


async def run_graph(
    graph: Graph,
    state: dict[str, Any],
    *,
    call_model: ModelCaller,
    max_iterations: int,
    on_node: NodeDone | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The final state and the run's facts (`steps`, `nodes_run`, what functions reported)."""
    facts: dict[str, Any] = {}
    visits: Counter[str] = Counter()
    ran: list[str] = []
    active = list(graph.entry)
    step = 0
    while active:
        step += 1
        for node in active:
            visits[node] += 1
            if visits[node] > max_iterations:
                raise IterationsExceeded(
                    f"workflow node {node!r} would run more than max_iterations "
                    f"({max_iterations}) times: its cycle did not end"
                )
        view: Mapping[str, Any] = state
        results = await all_or_first_error(
            [graph.nodes[node].run(view, call_model) for node in active]
        )
        for node, updates in zip(active, results, strict=True):
            noted = updates.pop(METADATA, None)
            if isinstance(noted, dict):
                facts.update(noted)
            state.update(updates)
            ran.append(node)
            if on_node is not None:
                await on_node(step, node, updates)
        following: list[str] = []
        for node in active:
            following.extend(graph.successors(node, state))
        active = list(dict.fromkeys(following))
    return state, {**facts, "steps": step, "nodes_run": ran}
