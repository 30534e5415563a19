"""Routing by project API key (the Bud way): `/v1/<endpoint>` with no project in the path.

`Authorization: Bearer <project API key>` names the project (one HMAC, then one dict lookup in an
index of every manifest key; Redis-stored keys after that), and the body's `model` picks the
module among that project's inference modules that serve it as an alias. Secure by default: no
key is a 401, a key reaches only its own project (and the modules, environments and models it is
scoped to), and a model the key may not use is the same 404 as one that does not exist. The route
found is then served as if it had been addressed by path: its own auth step checks the key again
and its limits charge the request once.

The index (keys by digest, aliases by project) is made on the first such request after a table
swap, from per-project parts: only the projects the swap changed are indexed again.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson

from fd2.auth.api_keys import ApiKey, KeyHasher
from fd2.auth.credentials import presented_credential
from fd2.auth.key_store import RedisKeyStore
from fd2.control.route_table import Route, RouteGroup, RouteTable
from fd2.serving.errors import BadRequest, Fd2Error, NotFound, Unauthorized
from fd2.serving.request import Request
from fd2.serving.routing import RouteKey

PREFIX: Final = b"/v1/"
MODELS_PATH: Final = "/v1/models"

RouteOf = Callable[[RouteKey, bytes | None], Awaitable[tuple[Route, RouteKey]]]


class _ProjectIndex:
    """One project's keys and aliases: kept across table swaps while the project's groups are
    the same objects (a rebuild of another project shares them)."""

    __slots__ = ("aliases", "groups", "hasher", "keys", "store")

    def __init__(self, groups: Mapping[str, RouteGroup]) -> None:
        self.groups = groups
        self.keys: dict[bytes, ApiKey] = {}
        self.aliases: dict[str, list[str]] = {}
        """Alias → the modules serving it in some environment (sorted)."""
        self.hasher: KeyHasher | None = None
        self.store: RedisKeyStore | None = None
        for module, group in sorted(groups.items()):
            for route in group.by_environment.values():
                self._add(module, route)

    def _add(self, module: str, route: Route) -> None:
        policy = route.steps.policy if route.steps is not None else None
        if policy is not None:
            if policy.keys is not None:
                for key in policy.keys.values():
                    self.keys.setdefault(key.digest, key)
            self.hasher = self.hasher or policy.hasher
            self.store = self.store or policy.store
        for alias in served_aliases(route):
            modules = self.aliases.setdefault(alias, [])
            if module not in modules:
                modules.append(module)


class _Index:
    """Every project's keys by digest (the first project in name order wins a digest), aliases
    by project, and the hasher and key store the routes share."""

    __slots__ = ("aliases", "hasher", "keys", "store")

    def __init__(self, projects: Mapping[str, _ProjectIndex]) -> None:
        self.keys: dict[bytes, ApiKey] = {}
        self.aliases: dict[str, dict[str, list[str]]] = {}
        self.hasher: KeyHasher | None = None
        self.store: RedisKeyStore | None = None
        for project, index in sorted(projects.items()):
            for digest, key in index.keys.items():
                self.keys.setdefault(digest, key)
            if index.aliases:
                self.aliases[project] = index.aliases
            self.hasher = self.hasher or index.hasher
            self.store = self.store or index.store


def served_aliases(route: Route) -> tuple[str, ...]:
    """The `model` values a route's module serves (`model_aliases()`, inference modules)."""
    if route.loaded is None or route.unavailable is not None:
        return ()
    aliases = getattr(route.loaded.instance, "model_aliases", None)
    return tuple(aliases()) if callable(aliases) else ()


class KeyRouting:
    __slots__ = ("_index", "_projects", "_table")

    def __init__(self) -> None:
        self._table: RouteTable | None = None
        self._index: _Index | None = None
        self._projects: dict[str, _ProjectIndex] = {}

    def _index_for(self, table: RouteTable) -> _Index:
        if self._table is not table or self._index is None:
            # Only the projects whose groups changed are indexed again: at 10k routes a swap of
            # one project must not make the next request walk every route.
            previous = self._projects
            projects: dict[str, _ProjectIndex] = {}
            for project, groups in table.by_project.items():
                index = previous.get(project)
                projects[project] = (
                    index if index is not None and index.groups is groups else _ProjectIndex(groups)
                )
            self._projects = projects
            self._index = _Index(projects)
            self._table = table
        return self._index

    async def key_of(self, table: RouteTable, request: Request) -> ApiKey:
        """The project key the request presents; 401 without one or for an unknown one."""
        credential = presented_credential(request.scope)
        if credential is None:
            raise Unauthorized(missing=True)
        index = self._index_for(table)
        if index.hasher is None:
            raise Unauthorized()
        digest = index.hasher.digest(credential)
        key = index.keys.get(digest)
        if key is not None and hmac.compare_digest(key.digest, digest):
            return key
        if index.store is not None:
            found = await index.store.find(digest)
            if found is not None:
                return found
        raise Unauthorized()

    async def route(
        self,
        table: RouteTable,
        request: Request,
        raw_path: bytes,
        environment: bytes | None,
        route_of: RouteOf,
    ) -> tuple[RouteKey, Route] | bytes:
        """The route a key-addressed request goes to, or (for `GET /v1/models`) the answer."""
        key = await self.key_of(table, request)
        path = raw_path.split(b"?", 1)[0].decode("latin-1")
        index = self._index_for(table)
        aliases = index.aliases.get(key.project, {})
        if path == MODELS_PATH and request.method == "GET":
            return await self._listing(key, aliases, environment, route_of)
        payload = await request.json_object()
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("The request names no model.", param="model")
        if key.models is None or model in key.models:
            for module in aliases.get(model, ()):
                found = await _served(key, module, model, path, environment, route_of)
                if found is not None:
                    return found
        # The same answer whether the model does not exist or the key may not see it.
        raise NotFound(
            f"The model {model!r} does not exist or you do not have access to it.",
            code="model_not_found",
        )

    async def _listing(
        self,
        key: ApiKey,
        aliases: dict[str, list[str]],
        environment: bytes | None,
        route_of: RouteOf,
    ) -> bytes:
        data: list[dict[str, Any]] = []
        for alias, modules in sorted(aliases.items()):
            if key.models is not None and alias not in key.models:
                continue
            for module in modules:
                if await _served(key, module, alias, MODELS_PATH, environment, route_of):
                    data.append({"id": alias, "object": "model", "created": 0, "owned_by": "fd2"})
                    break
        return orjson.dumps({"object": "list", "data": data})


async def _served(
    key: ApiKey,
    module: str,
    alias: str,
    path: str,
    environment: bytes | None,
    route_of: RouteOf,
) -> tuple[RouteKey, Route] | None:
    """The module's route when the key may use it and it serves `alias` there."""
    if key.modules is not None and module not in key.modules:
        return None
    route_key = RouteKey(key.project, module, path)
    try:
        route, _ = await route_of(route_key, environment)
    except Fd2Error:
        return None
    if key.environments is not None and route.environment not in key.environments:
        return None
    if alias not in served_aliases(route):
        return None
    return route_key, route
