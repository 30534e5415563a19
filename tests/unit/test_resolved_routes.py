"""The resolved-route memo: kept per table, emptied by a swap, bounded."""

from __future__ import annotations

from typing import Any, cast

from fd2.control.route_table import Route, RouteTable
from fd2.serving import resolved_routes
from fd2.serving.resolved_routes import ResolvedRoutes
from fd2.serving.routing import RouteKey


def _resolved(name: str) -> Any:
    async def handler(request: object, send: object) -> None:
        return None

    return (cast(Route, object()), RouteKey("p", name, "/v1/chat/completions"), handler, "/v1")


def _lookup(path: bytes) -> Any:
    return (path, None, None, None, "POST")


def test_a_route_is_kept_while_the_table_is_the_same() -> None:
    table = RouteTable({}, 1)
    memo = ResolvedRoutes()
    assert memo.get(table, _lookup(b"/p/a/v1")) is None
    answer = _resolved("a")
    memo.put(table, _lookup(b"/p/a/v1"), answer)
    assert memo.get(table, _lookup(b"/p/a/v1")) is answer
    assert memo.get(table, _lookup(b"/p/b/v1")) is None


def test_a_new_table_forgets_every_route_resolved_on_the_old_one() -> None:
    old, new = RouteTable({}, 1), RouteTable({}, 2)
    memo = ResolvedRoutes()
    memo.put(old, _lookup(b"/p/a/v1"), _resolved("a"))
    assert memo.get(new, _lookup(b"/p/a/v1")) is None
    # And the old table's entry does not come back if a request still holds the old table.
    assert memo.get(old, _lookup(b"/p/a/v1")) is None


def test_a_put_for_a_newer_table_than_the_one_looked_up_starts_over() -> None:
    """A Control Tower fetch during resolution swaps the table: the route goes in under it."""
    old, new = RouteTable({}, 1), RouteTable({}, 2)
    memo = ResolvedRoutes()
    memo.put(old, _lookup(b"/p/a/v1"), _resolved("a"))
    fresh = _resolved("b")
    memo.put(new, _lookup(b"/p/b/v1"), fresh)
    assert memo.get(new, _lookup(b"/p/b/v1")) is fresh
    assert memo.get(new, _lookup(b"/p/a/v1")) is None


def test_distinct_paths_never_grow_it_past_its_limit(monkeypatch: Any) -> None:
    monkeypatch.setattr(resolved_routes, "_LIMIT", 8)
    table = RouteTable({}, 1)
    memo = ResolvedRoutes()
    for index in range(100):
        memo.put(table, _lookup(b"/p/a/v1/jobs/%d" % index), _resolved("a"))
        assert len(memo._resolved) <= 8
    assert memo.get(table, _lookup(b"/p/a/v1/jobs/99")) is not None
