"""The routes requests resolved to, by what decided them, for as long as the route table stays
the same: a request for a path seen before skips parsing it, finding its module and environment
and its endpoint's handler (~5% of an open route's own work)."""

from __future__ import annotations

from typing import Final

from fd2.control.route_table import Route, RouteTable
from fd2.module import Handler
from fd2.serving.routing import RouteKey

Resolved = tuple[Route, RouteKey, Handler, str]
"""The route, the key as resolved, the endpoint's handler and its endpoint (pattern) name."""
Lookup = tuple[bytes, bytes | None, bytes | None, bytes | None, str]
"""Raw path, X-Project-Module, Host (when subdomains route), X-Environment, method."""

_LIMIT: Final = 4096
"""Entries kept before starting over: distinct paths (job ids) must not grow it for ever."""


class ResolvedRoutes:
    """Only successes are kept, so an error is worked out (and worded) afresh each time; the
    table is immutable, so one swapped in empties this before it is read."""

    __slots__ = ("_resolved", "_table")

    def __init__(self) -> None:
        self._table: RouteTable | None = None
        self._resolved: dict[Lookup, Resolved] = {}

    def get(self, table: RouteTable, lookup: Lookup) -> Resolved | None:
        if table is not self._table:
            self._table = table
            self._resolved = {}
            return None
        return self._resolved.get(lookup)

    def put(self, table: RouteTable, lookup: Lookup, resolved: Resolved) -> None:
        if table is not self._table:
            self._table = table
            self._resolved = {}
        elif len(self._resolved) >= _LIMIT:
            self._resolved.clear()
        self._resolved[lookup] = resolved
