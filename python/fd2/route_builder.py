"""Compiles manifests into route-table entries and swaps the table, one project at a time.

Runs off the hot path (at start-up, on a manifest change, on a cache miss). A module that cannot be
set up becomes an entry that answers with the reason (503), never a failure of the whole project.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import aiohttp

from fd2.errors import ConfigError, Fd2Error, NotFound
from fd2.manifests.compile import (
    AnyManifest,
    ModuleDeclaration,
    declarations,
    resolve_declaration,
)
from fd2.manifests.models import SERVED_STATUSES
from fd2.module import Module, ModuleContext, Timeouts
from fd2.registry import ModuleRegistry
from fd2.route_table import EMPTY_TABLE, LoadedModule, Route, RouteGroup, RouteTable
from fd2.secrets import SecretResolver

if TYPE_CHECKING:
    from fd2.auth.compiler import GateCompiler

_log = logging.getLogger("fd2.routes")


class RouteBuilder:
    """Owns the current RouteTable; `apply_project` rebuilds one project and swaps atomically."""

    def __init__(
        self,
        *,
        registry: ModuleRegistry,
        secrets: SecretResolver,
        http: aiohttp.ClientSession,
        default_environment: str,
        base_timeouts: Timeouts,
        environ: Mapping[str, str],
        gates: GateCompiler | None = None,
    ) -> None:
        self.table: RouteTable = EMPTY_TABLE
        self._gates = gates
        self._registry = registry
        self._secrets = secrets
        self._http = http
        self._default_environment = default_environment
        self._base_timeouts = base_timeouts
        self._environ = environ
        self._digests: dict[str, str] = {}
        self._lock = asyncio.Lock()
        # Read by /metrics and /admin/routes; written here only, off the hot path.
        self.rebuilds = 0
        self.rebuild_seconds = 0.0
        self.last_rebuild_seconds = 0.0
        self._retired: list[LoadedModule] = []
        self._versions: dict[str, str | None] = {}

    def digest(self, project: str) -> str | None:
        return self._digests.get(project)

    def version_of(self, project: str) -> str | None:
        """The `version` field(s) of the manifests a project was compiled from."""
        return self._versions.get(project)

    def retired_open(self) -> int:
        """Replaced module instances still serving requests that started on them."""
        self._retired = [module for module in self._retired if not module.closed]
        return len(self._retired)

    async def apply_project(
        self, project: str, manifests: Sequence[tuple[str, AnyManifest]] | None, digest: str
    ) -> bool:
        """Rebuild `project` from its manifests (None removes it). False when nothing changed."""
        async with self._lock:
            if manifests is not None and self._digests.get(project) == digest:
                return False
            began = time.perf_counter()
            groups = await self._build_project(project, manifests) if manifests is not None else {}
            old = self.table
            merged = {key: group for key, group in old.groups.items() if key[0] != project}
            merged.update(groups)
            projects = set(old.projects)
            if manifests is None:
                projects.discard(project)
                self._digests.pop(project, None)
                self._versions.pop(project, None)
            else:
                projects.add(project)
                self._digests[project] = digest
                versions = sorted({str(m.version) for _, m in manifests if m.version})
                self._versions[project] = ", ".join(versions) or None
            self.table = RouteTable(merged, frozenset(projects), old.version + 1)
            for key, group in old.groups.items():
                if key[0] == project:
                    for route in group.by_environment.values():
                        if route.loaded is not None:
                            route.loaded.retire()
                            self._retired.append(route.loaded)
            self.last_rebuild_seconds = time.perf_counter() - began
            self.rebuilds += 1
            self.rebuild_seconds += self.last_rebuild_seconds
            _log.info(
                "route table v%d: project %s %s (%d routes in all)",
                self.table.version,
                project,
                "removed" if manifests is None else "compiled",
                len(self.table),
            )
            return True

    async def close(self) -> None:
        async with self._lock:
            old, self.table = self.table, EMPTY_TABLE
            loaded = old.loaded_modules()
            for module in loaded:
                module.retire()
            await asyncio.gather(*(module.wait_closed() for module in loaded))

    async def _build_project(
        self, project: str, manifests: Sequence[tuple[str, AnyManifest]]
    ) -> dict[tuple[str, str], RouteGroup]:
        by_module: dict[str, ModuleDeclaration] = {}
        for origin, manifest in manifests:
            for declaration in declarations(
                manifest, origin=origin, default_env=self._default_environment
            ):
                previous = by_module.get(declaration.module)
                if previous is not None:
                    _log.warning(
                        "module %s/%s is declared by %s and %s; using %s",
                        project,
                        declaration.module,
                        previous.origin,
                        origin,
                        origin,
                    )
                by_module[declaration.module] = declaration
        for declaration in by_module.values():
            missing = [
                name
                for name in getattr(declaration.entry, "dependencies", None) or []
                if name not in by_module
            ]
            if missing:
                _log.warning(
                    "module %s/%s depends on undeclared modules: %s",
                    project,
                    declaration.module,
                    ", ".join(missing),
                )
        return {
            (project, name): await self._build_group(declaration, by_module)
            for name, declaration in by_module.items()
        }

    async def _build_group(
        self, declaration: ModuleDeclaration, peers: Mapping[str, ModuleDeclaration]
    ) -> RouteGroup:
        label = f"{declaration.project}/{declaration.module}"
        problem: Fd2Error | None = None
        cls: type[Module] | None = None
        if declaration.status not in SERVED_STATUSES:
            problem = NotFound(f"Module {label} is {declaration.status}.")
        else:
            try:
                cls = self._registry.resolve(declaration.module_type, declaration.implementation)
            except ConfigError as exc:
                problem = ConfigError(f"Module {label} is not available: {exc.message}")
                _log.error("%s (%s)", problem.message, declaration.origin)
            if cls is None and problem is None:
                problem = NotFound(
                    f"Module {label} has type {declaration.module_type!r}, "
                    "which this gateway does not serve."
                )
                _log.info(
                    "module %s: type %s is not served here; ignored",
                    label,
                    declaration.module_type,
                )
        routes: dict[str, Route] = {}
        for environment in declaration.environments:
            if problem is not None or cls is None:
                routes[environment] = _unavailable(declaration, environment, problem)
            else:
                routes[environment] = await self._build_route(declaration, environment, cls, peers)
        return RouteGroup(
            by_environment=routes,
            default_environment=declaration.default_environment,
            origin=declaration.origin,
        )

    async def _build_route(
        self,
        declaration: ModuleDeclaration,
        environment: str,
        cls: type[Module],
        peers: Mapping[str, ModuleDeclaration],
    ) -> Route:
        label = f"{declaration.project}/{declaration.module} [{environment}]"
        try:
            resolved = resolve_declaration(
                declaration,
                environment,
                secrets=self._secrets,
                secret_fields=cls.secret_fields,
                environ=self._environ,
                base_timeouts=self._base_timeouts,
            )
            # Compiled before set-up, so a route whose policy cannot be built holds no instance.
            gate = (
                self._gates.compile(declaration, environment, peers, resolved.config)
                if self._gates is not None
                else None
            )
            instance = cls()
            await instance.setup(
                ModuleContext(
                    project=declaration.project,
                    module=declaration.module,
                    environment=environment,
                    module_type=declaration.module_type,
                    config=resolved.config,
                    references=resolved.references,
                    endpoints=resolved.endpoints,
                    timeouts=resolved.timeouts,
                    http=self._http,
                    logger=logging.getLogger(f"fd2.module.{declaration.module_type}"),
                )
            )
            handlers = instance.endpoints()
        except ConfigError as exc:
            problem = ConfigError(f"Module {label} is not available: {exc.message}")
            _log.error("%s (%s)", problem.message, declaration.origin)
            return _unavailable(declaration, environment, problem)
        except Exception as exc:  # a faulty module must not break the rest of the table
            problem = ConfigError(f"Module {label} failed to start.")
            _log.error("%s (%s: %s)", problem.message, declaration.origin, type(exc).__name__)
            return _unavailable(declaration, environment, problem)
        return Route(
            project=declaration.project,
            module=declaration.module,
            environment=environment,
            loaded=LoadedModule(instance, label),
            handlers=handlers,
            gate=gate,
        )


def _unavailable(
    declaration: ModuleDeclaration, environment: str, problem: Fd2Error | None
) -> Route:
    return Route(
        project=declaration.project,
        module=declaration.module,
        environment=environment,
        loaded=None,
        handlers={},
        unavailable=problem,
    )
