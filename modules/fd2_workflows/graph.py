"""A workflow config compiled into a graph the executor runs, checked once at set-up.

Edges go `from` a node (or `START`) `to` a node (or `END`). Without a `START` edge the first node
is the entry; a node without outgoing edges ends its branch. Without any edges the nodes run in
list order, or, for `workflow_type: parallel`, all at once. What each workflow type allows:

- `sequential`: a chain (one edge out of each node, no conditions);
- `parallel`: fan-out (every edge out of a node is taken; the targets run concurrently);
- `conditional`: edges with a `condition` (fd2_workflows.conditions): the first one that holds
  is taken; when none holds, the node's edges without a condition are.

A cycle must pass through a conditional edge (one made of plain edges could never end), and
`max_iterations` still bounds how often any node runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fd2.serving.errors import ConfigError
from fd2_workflows.conditions import Condition
from fd2_workflows.config import EdgeSpec, WorkflowConfig
from fd2_workflows.nodes import LlmNode, Node, compile_node
from fd2_workflows.state import StateSchema

START: Final = frozenset({"START", "__start__"})
END: Final = frozenset({"END", "__end__"})


@dataclass(frozen=True, slots=True)
class Edge:
    to: str | None
    """None: the run's end."""
    condition: Condition | None = None


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: Mapping[str, Node]
    entry: tuple[str, ...]
    out: Mapping[str, tuple[Edge, ...]]

    def successors(self, node: str, state: Mapping[str, Any]) -> list[str]:
        edges = self.out.get(node, ())
        chosen = next(
            (e for e in edges if e.condition is not None and e.condition.holds(state)), None
        )
        if chosen is not None:
            return [chosen.to] if chosen.to is not None else []
        return [e.to for e in edges if e.condition is None and e.to is not None]


def compile_graph(config: WorkflowConfig, schema: StateSchema, modules: Collection[str]) -> Graph:
    """Checks and compiles `config`; `modules` are the inference modules it may call."""
    default_module = config.inference_modules[0] if config.inference_modules else None
    nodes: dict[str, Node] = {}
    for spec in config.nodes:
        if spec.id in nodes or spec.id in START or spec.id in END:
            raise ConfigError(f"node id {spec.id!r} is used twice or is reserved")
        nodes[spec.id] = compile_node(spec, schema, default_module)
    written: set[str] = set()
    for node in nodes.values():
        if node.writes is None:  # writes whichever declared fields its input holds
            written.update(schema.fields)
        else:
            schema.check_written(node.writes, f"node {node.id!r}")
            written.update(node.writes)
        if isinstance(node, LlmNode) and node.module not in modules:
            raise ConfigError(
                f"node {node.id!r} calls inference module {node.module!r}, which is not a "
                "dependency of this workflow (list it in inference_modules)"
            )
    schema.set_written(written)
    entry, out = _edges(config, list(nodes))
    graph = Graph(nodes=nodes, entry=entry, out=out)
    _check_shape(config, graph)
    return graph


def _edges(
    config: WorkflowConfig, order: list[str]
) -> tuple[tuple[str, ...], dict[str, tuple[Edge, ...]]]:
    if not config.edges:
        if config.workflow_type == "parallel":
            return tuple(order), {}
        return (order[0],), {a: (Edge(b),) for a, b in itertools.pairwise(order)}
    entry: list[str] = []
    out: dict[str, list[Edge]] = {}
    for index, spec in enumerate(config.edges):
        where = f"edge {index} ({spec.from_} -> {spec.to})"
        _check_ends(spec, order, where)
        condition = None if spec.condition is None else Condition(spec.condition, where)
        if condition is not None and config.workflow_type != "conditional":
            raise ConfigError(f"{where}: conditions need workflow_type 'conditional'")
        if spec.from_ in START:
            if spec.to in END:
                raise ConfigError(f"{where}: goes from START straight to END")
            entry.append(spec.to)
            continue
        out.setdefault(spec.from_, []).append(Edge(None if spec.to in END else spec.to, condition))
    return tuple(dict.fromkeys(entry or [order[0]])), {k: tuple(v) for k, v in out.items()}


def _check_ends(spec: EdgeSpec, order: list[str], where: str) -> None:
    if spec.from_ not in START and spec.from_ not in order:
        raise ConfigError(f"{where}: 'from' names no node")
    if spec.to not in END and spec.to not in order:
        raise ConfigError(f"{where}: 'to' names no node")


def _check_shape(config: WorkflowConfig, graph: Graph) -> None:
    if config.workflow_type == "sequential":
        if len(graph.entry) > 1:
            raise ConfigError("a sequential workflow has one entry node (use 'parallel')")
        for node, edges in graph.out.items():
            if len(edges) > 1:
                raise ConfigError(
                    f"node {node!r} has {len(edges)} outgoing edges: a sequential workflow "
                    "is a chain (use 'parallel' to fan out, 'conditional' to branch)"
                )
    plain = {
        n: [e.to for e in edges if e.condition is None and e.to] for n, edges in graph.out.items()
    }
    cycle = _cycle(plain)
    if cycle:
        raise ConfigError(
            "edges without a condition form a cycle that can never end: " + " -> ".join(cycle)
        )
    reached = set(graph.entry)
    frontier = list(graph.entry)
    while frontier:
        node = frontier.pop()
        for edge in graph.out.get(node, ()):
            if edge.to is not None and edge.to not in reached:
                reached.add(edge.to)
                frontier.append(edge.to)
    unreached = [n for n in graph.nodes if n not in reached]
    if unreached:
        raise ConfigError(f"node(s) {', '.join(unreached)} can never run (no edge reaches them)")


def _cycle(edges: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle in `edges`, as a path that returns to its start, or None (depth-first)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for following in edges.get(node, ()):
            if state.get(following) == 1:
                return [*path[path.index(following) :], following]
            if following not in state:
                found = visit(following)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in edges:
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None
