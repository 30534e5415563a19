"""Micro-benchmark: from a raw request path and X-Environment to the Route, in a 10k-route table.

fd2's lookup (`key_from_path` + two dict lookups, as `app.py` does it) against the best other
pure-Python way we know (one anchored regex that splits and checks both names, then nested dicts).
Both must find the same route, and both must refuse a bad name. Run with `make bench-micro`.
"""

from __future__ import annotations

import re

import pytest

from fd2.control.environments import canonical_environment
from fd2.control.route_table import Route, RouteGroup, RouteTable
from fd2.serving.errors import InvalidRoute
from fd2.serving.routing import key_from_path

PROJECTS, MODULES = 1000, 5
ENVIRONMENTS = ("development", "staging")  # 1000 x 5 x 2 = 10k routes
PATH = b"/tenant-737/chat-3/v1/chat/completions"
ENVIRONMENT = b"staging"


def _table() -> RouteTable:
    groups = {}
    for p in range(PROJECTS):
        for m in range(MODULES):
            project, module = f"tenant-{p}", f"chat-{m}"
            routes = {
                env: Route(
                    project=project, module=module, environment=env, loaded=None, handlers={}
                )
                for env in ENVIRONMENTS
            }
            groups[(project, module)] = RouteGroup(
                by_environment=routes, default_environment="development", origin="bench"
            )
    return RouteTable.of_groups(groups, 1)


TABLE = _table()
NESTED: dict[str, dict[str, dict[str, Route]]] = {}
for (_project, _module), _group in TABLE.groups.items():
    NESTED.setdefault(_project, {})[_module] = dict(_group.by_environment)
_ONE_REGEX = re.compile(rb"^/([A-Za-z0-9_-]{1,64})/([A-Za-z0-9_-]{1,64})(/.*)?$", re.DOTALL)


def fd2_lookup(raw_path: bytes, environment: bytes) -> tuple[Route, str]:
    key = key_from_path(raw_path)
    group = TABLE.group(key.project, key.module)
    assert group is not None
    return group.by_environment[canonical_environment(environment.decode("latin-1"))], key.path


def regex_lookup(raw_path: bytes, environment: bytes) -> tuple[Route, str]:
    match = _ONE_REGEX.match(raw_path)
    if match is None:
        raise InvalidRoute("Invalid route.")
    project, module, rest = match.groups()
    env = canonical_environment(environment.decode("latin-1"))
    route = NESTED[project.decode("ascii")][module.decode("ascii")][env]
    return route, (rest or b"/").decode("latin-1")


def test_table_has_10k_routes() -> None:
    assert len(TABLE) == 10_000


@pytest.mark.parametrize("lookup", [fd2_lookup, regex_lookup], ids=["fd2", "one-regex"])
def test_route_lookup(benchmark, lookup) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = "route lookup (10k routes)"
    route, path = benchmark(lookup, PATH, ENVIRONMENT)
    assert (route.project, route.module, route.environment) == ("tenant-737", "chat-3", "staging")
    assert path == "/v1/chat/completions"
    with pytest.raises(InvalidRoute):
        lookup(b"/tenant%2F737/chat-3/v1/chat/completions", ENVIRONMENT)
