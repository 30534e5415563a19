"""The key-routing index is rebuilt per project: a table swap re-indexes only what changed."""

from __future__ import annotations

from typing import Any

from fd2.control.route_table import LoadedModule, Route, RouteGroup, RouteTable
from fd2.serving.key_routing import KeyRouting


class _Aliased:
    """A module instance that serves some model aliases (as inference modules do)."""

    def __init__(self, aliases: tuple[str, ...]) -> None:
        self._aliases = aliases
        self.calls = 0

    def model_aliases(self) -> tuple[str, ...]:
        self.calls += 1
        return self._aliases


def _groups(project: str, instance: Any) -> dict[str, RouteGroup]:
    route = Route(
        project=project,
        module="chat",
        environment="dev",
        loaded=LoadedModule(instance, f"{project}/chat"),
        handlers={},
    )
    return {
        "chat": RouteGroup(by_environment={"dev": route}, default_environment="dev", origin="t")
    }


def test_a_swap_of_one_project_reindexes_only_that_project() -> None:
    instances = {f"p{i}": _Aliased((f"model-{i}",)) for i in range(50)}
    table = RouteTable({p: _groups(p, inst) for p, inst in instances.items()}, 1)
    routing = KeyRouting()
    first = routing._index_for(table)
    assert first.aliases["p7"] == {"model-7": ["chat"]}
    assert all(inst.calls == 1 for inst in instances.values())

    changed = _Aliased(("model-7b",))
    swapped = table.with_project("p7", _groups("p7", changed))
    second = routing._index_for(swapped)
    assert second.aliases["p7"] == {"model-7b": ["chat"]}
    assert second.aliases["p8"] == {"model-8": ["chat"]}
    # Every other project's index was kept: their modules were not asked again.
    assert changed.calls == 1
    assert all(inst.calls == 1 for inst in instances.values())
    # The same table again: the same index.
    assert routing._index_for(swapped) is second

    removed = swapped.with_project("p8", None)
    assert "p8" not in routing._index_for(removed).aliases
