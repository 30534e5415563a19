"""A project's module dependency graph: which modules name unknown modules or sit on a cycle.

A module whose dependencies cannot all be handed to it is invalid (it answers 503 with the
reason); the rest of the project still serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from fd2.control.manifests.models import SERVED_STATUSES

# Control Tower config fields that name another module of the project. The Control Tower drops
# `dependencies`, so these typed fields are how its manifests link modules; each named module is
# handed over as a dependency, as if listed there.
_REFERENCE_FIELDS: Final = ("apisix_gateway_module",)
_JWT_REFERENCE: Final = ("jwt_auth_enabled", "jwt_module_reference")
# Config fields that list modules (`langgraph_workflow`: the inference modules its nodes call).
_REFERENCE_LISTS: Final = ("inference_modules",)
_NAMING_FIELDS: Final = frozenset((*_REFERENCE_FIELDS, *_REFERENCE_LISTS, _JWT_REFERENCE[0]))
"""The fields without which a config names no module (the JWT reference needs its flag)."""


def dependency_names(entry: object) -> tuple[str, ...]:
    """The modules `entry` needs: its `dependencies` and the modules its config names."""
    listed_names = getattr(entry, "dependencies", None)
    config = getattr(entry, "config", None) or {}
    if not listed_names and type(config) is dict and config.keys().isdisjoint(_NAMING_FIELDS):
        return ()  # the common case, in one set operation: 5k modules in a full build
    names = list(listed_names or ())
    if isinstance(config, Mapping):
        for field in _REFERENCE_FIELDS:
            value = config.get(field)
            if isinstance(value, str) and value:
                names.append(value)
        for field in _REFERENCE_LISTS:
            listed = config.get(field)
            if isinstance(listed, list):
                names.extend(name for name in listed if isinstance(name, str) and name)
        enabled, reference = (config.get(field) for field in _JWT_REFERENCE)
        if enabled is True and isinstance(reference, str) and reference:
            names.append(reference)
    return tuple(dict.fromkeys(names))


def dependency_problems(
    graph: Mapping[str, Sequence[str]], statuses: Mapping[str, str]
) -> dict[str, str]:
    """Module name → why its dependencies are unusable (absent for modules without a problem).

    `graph` maps every module of the project to the names it depends on; `statuses` gives each
    module's manifest status (a disabled dependency cannot be handed over either).
    """
    problems: dict[str, str] = {}
    for name, needs in graph.items():
        if not needs:  # most modules: nothing unknown, on a cycle or off
            continue
        unknown = [need for need in needs if need not in graph]
        if unknown:
            problems[name] = "depends on unknown module(s): " + ", ".join(unknown)
            continue
        cycle = _cycle_through(name, graph)
        if cycle:
            problems[name] = "dependency cycle: " + " -> ".join(cycle)
            continue
        off = [need for need in needs if statuses.get(need) not in SERVED_STATUSES]
        if off:
            problems[name] = "depends on module(s) that are not enabled: " + ", ".join(off)
    # A module whose dependency is itself unusable cannot be served either; repeat until stable.
    changed = True
    while changed:
        changed = False
        for name, needs in graph.items():
            if not needs or name in problems:
                continue
            broken = next((need for need in needs if need in problems), None)
            if broken is not None:
                problems[name] = f"dependency {broken!r} is unusable ({problems[broken]})"
                changed = True
    return problems


def _cycle_through(start: str, graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The shortest path start -> ... -> start, if any (breadth-first over names)."""
    parents: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following: list[str] = []
        for node in frontier:
            for need in graph.get(node, ()):
                if need == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if need not in seen and need in graph:
                    seen.add(need)
                    parents[need] = node
                    following.append(need)
        frontier = following
    return None
