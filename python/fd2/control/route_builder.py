"""Compiles manifests into route-table entries and swaps the table, one project at a time.

Runs off the hot path (at start-up, on a manifest change, on a cache miss). A module that cannot be
set up becomes an entry that answers with the reason (503), never a failure of the whole project.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import msgspec

from fd2.control.environments import canonical_environment
from fd2.control.manifests.compile import (
    AnyManifest,
    ModuleDeclaration,
    declarations,
)
from fd2.control.manifests.models import SERVED_STATUSES
from fd2.control.registry import ModuleRegistry
from fd2.control.route_inputs import VAULT_MODULE_TYPE, ProjectInputs, Resolution
from fd2.control.route_table import EMPTY_TABLE, LoadedModule, Route, RouteGroup, RouteTable
from fd2.control.secret_usage import SecretUsage
from fd2.control.secrets import SecretResolver
from fd2.control.slices import Slices
from fd2.control.tasks import Supervisor
from fd2.control.vault.pool import VaultPool
from fd2.http_client import ConnectionPool
from fd2.module import Module, ModuleContext, ModuleDependency, Timeouts
from fd2.serving.errors import ConfigError, Fd2Error, NotFound
from fd2.serving.module_calls import ModuleHandle
from fd2.telemetry.log_throttle import ThrottledLog
from fd2.telemetry.metrics import MetricsRegistry

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from fd2.config import Settings
    from fd2.jobs.service import JobService
    from fd2.pipeline.compiler import StepCompiler

_log = logging.getLogger("fd2.routes")


class RouteBuilder:
    """Owns the current RouteTable; `apply_project` rebuilds one project and swaps atomically."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        secrets: SecretResolver,
        http: aiohttp.ClientSession,
        environ: Mapping[str, str],
        **shared: Any,
    ) -> RouteBuilder:
        """A builder with the settings' registry, default environment and timeouts; `shared`:
        the worker's means (gates, vault, redis, metrics, tasks)."""
        return cls(
            registry=ModuleRegistry(allowed_packages=settings.module_packages),
            secrets=secrets,
            http=http,
            default_environment=canonical_environment(settings.default_env),
            base_timeouts=Timeouts(
                connect_s=settings.connect_timeout,
                read_s=settings.read_timeout,
                total_s=settings.total_timeout,
            ),
            environ=environ,
            **shared,
        )

    def __init__(
        self,
        *,
        registry: ModuleRegistry,
        secrets: SecretResolver,
        http: aiohttp.ClientSession,
        default_environment: str,
        base_timeouts: Timeouts,
        environ: Mapping[str, str],
        vault: VaultPool | None = None,
        gates: StepCompiler | None = None,
        redis: Redis | None = None,
        metrics: MetricsRegistry | None = None,
        tasks: Supervisor | None = None,
        jobs: JobService | None = None,
        upstream_pool: ConnectionPool | None = None,
    ) -> None:
        self.table: RouteTable = EMPTY_TABLE
        self._jobs = jobs
        # The worker's lean upstream client; a builder made without one owns one of its own.
        self._own_pool = upstream_pool is None
        self._pool = upstream_pool if upstream_pool is not None else ConnectionPool()
        self._loggers: dict[str, logging.Logger] = {}
        # The worker's shared means, handed to every module in its context.
        self._redis = redis
        self._metrics = metrics if metrics is not None else MetricsRegistry()
        self._tasks = tasks if tasks is not None else Supervisor()
        self._vault = vault
        self._gates = gates
        self._manifests: dict[str, Sequence[tuple[str, AnyManifest]]] = {}
        self._secret_usage: dict[str, SecretUsage] = {}
        self._registry = registry
        self._secrets = secrets
        self._http = http
        self._default_environment = default_environment
        self._base_timeouts = base_timeouts
        self._environ = environ
        self._digests: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._unavailable_log = ThrottledLog(_log)
        # Read by /metrics and /admin/routes; written here only, off the hot path.
        self.rebuilds = 0
        self.rebuild_seconds = 0.0
        self.last_rebuild_seconds = 0.0
        self._retired: list[LoadedModule] = []
        self._versions: dict[str, str | None] = {}

    @property
    def upstream_pool(self) -> ConnectionPool:
        """The upstream connection pool handed to every module (closed by its owner)."""
        return self._pool

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
        self,
        project: str,
        manifests: Sequence[tuple[str, AnyManifest]] | None,
        digest: str,
        *,
        may_block: bool | None = None,
    ) -> bool:
        """Rebuild `project` from its manifests (None removes it). False when nothing changed.
        `may_block`: False when the source knows the manifests name no reference whose
        resolution may block (a secret file, Vault); None: the builder looks."""
        async with self._lock:
            if manifests is not None and self._digests.get(project) == digest:
                return False
            await self._swap(project, manifests, digest, may_block)
            return True

    async def refresh_secrets(self, changed_vault_paths: set[str], retry_failed: bool) -> list[str]:
        """Rebuilds the projects that read a changed Vault secret (or, with `retry_failed`, could
        not read one because Vault failed)."""
        async with self._lock:
            projects = [
                project
                for project, usage in self._secret_usage.items()
                if (retry_failed and usage.vault_failed) or usage.vault_paths & changed_vault_paths
            ]
            for project in projects:
                _log.info("project %s: rebuilding for its Vault secrets", project)
                await self._swap(project, self._manifests[project], self._digests[project])
            return projects

    async def _swap(
        self,
        project: str,
        manifests: Sequence[tuple[str, AnyManifest]] | None,
        digest: str,
        may_block: bool | None = None,
    ) -> None:
        """Builds `project` (None: removes it) and swaps it into the table; the lock is held."""
        began = time.perf_counter()
        with collector_paused():
            groups = (
                await self._build_project(project, manifests, may_block)
                if manifests is not None
                else None
            )
        old = self.table
        if manifests is None:
            self._digests.pop(project, None)
            self._manifests.pop(project, None)
            self._secret_usage.pop(project, None)
            self._versions.pop(project, None)
        else:
            self._digests[project] = digest
            self._manifests[project] = manifests
            versions = sorted({str(m.version) for _, m in manifests if m.version})
            self._versions[project] = ", ".join(versions) or None
        retired = old.loaded_modules(project)  # before the swap, which may change `old`
        self.table = old.with_project(project, groups, in_place=_slice.whole)
        for loaded in retired:
            loaded.retire()
            self._retired.append(loaded)
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

    async def close(self) -> None:
        async with self._lock:
            old, self.table = self.table, EMPTY_TABLE
            loaded = old.loaded_modules()
            for module in loaded:
                module.retire()
            await asyncio.gather(*(module.wait_closed() for module in loaded))
            if self._own_pool:
                await self._pool.close()

    async def _build_project(
        self,
        project: str,
        manifests: Sequence[tuple[str, AnyManifest]],
        may_block: bool | None = None,
    ) -> dict[str, RouteGroup]:
        await _slice.pause()  # what ran before (reading the directory, hashing) is a slice
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
        inputs = ProjectInputs(
            by_module,
            secrets=self._secrets,
            vault=self._vault,
            environ=self._environ,
            base_timeouts=self._base_timeouts,
        )
        classes = {name: self._module_class(d, inputs) for name, d in by_module.items()}
        jobs = [
            (by_module[name], environment, cls.secret_fields)
            for name, (cls, problem) in classes.items()
            if cls is not None and problem is None
            for environment in by_module[name].environments
        ]
        # Secret files and Vault (hvac is synchronous) may block: then one hop off the event loop
        # per project. A project whose references are all `env:` resolves in place (a thread
        # hop costs more than the whole resolution, and 10k of them dominate a full build).
        if not jobs:
            resolutions: dict[tuple[str, str], Resolution] = {}
        elif may_block is not False and _may_block(manifests):
            resolutions = await asyncio.to_thread(inputs.resolve_all, jobs)
        else:
            resolutions = inputs.resolve_all(jobs)
        await _slice.pause()
        groups: dict[str, RouteGroup] = {}
        for name, declaration in by_module.items():
            cls, problem = classes[name]
            routes: dict[str, Route] = {}
            for environment in declaration.environments:
                if not _slice.whole:  # (no coroutine per route when the build is whole)
                    await _slice.pause()  # between routes: requests are served meanwhile
                if problem is not None or cls is None:
                    routes[environment] = _unavailable(declaration, environment, problem)
                else:
                    routes[environment] = await self._build_route(
                        declaration,
                        environment,
                        cls,
                        resolutions[(name, environment)],
                        by_module,
                        inputs.resolver_for(environment),
                    )
            groups[name] = RouteGroup(
                module_type=declaration.module_type,
                by_environment=routes,
                default_environment=declaration.default_environment,
                origin=declaration.origin,
            )
        self._secret_usage[project] = inputs.usage
        return groups

    def _module_class(
        self, declaration: ModuleDeclaration, inputs: ProjectInputs
    ) -> tuple[type[Module] | None, Fd2Error | None]:
        """The class serving a declaration, or why none will (then every route answers that)."""
        label = f"{declaration.project}/{declaration.module}"  # (only messages read it)
        if declaration.status not in SERVED_STATUSES:
            return None, NotFound(f"Module {label} is {declaration.status}.")
        try:
            cls = self._registry.resolve(declaration.module_type, declaration.implementation)
        except ConfigError as exc:
            problem = ConfigError(f"Module {label} is not available: {exc.message}")
            _log.error("%s (%s)", problem.message, declaration.origin)
            return None, problem
        if cls is None:
            if declaration.module_type == VAULT_MODULE_TYPE:  # read by the core, not a route
                _log.info("module %s: type vault configures the project's Vault", label)
            else:
                _log.warning(
                    "module %s: type %s is served by no installed package; %s",
                    label,
                    declaration.module_type,
                    self._registry.install_hint(declaration.module_type),
                )
            return None, NotFound(
                f"Module {label} has type {declaration.module_type!r}, "
                "which this gateway does not serve."
            )
        dependency_problem = inputs.problems.get(declaration.module)
        if dependency_problem is not None:
            problem = ConfigError(f"Module {label} is not available: {dependency_problem}")
            _log.error("%s (%s)", problem.message, declaration.origin)
            return None, problem
        return cls, None

    async def _build_route(
        self,
        declaration: ModuleDeclaration,
        environment: str,
        cls: type[Module],
        resolution: Resolution,
        peers: Mapping[str, ModuleDeclaration],
        secrets: SecretResolver,
    ) -> Route:
        # One coroutine per route (set-up's own aside): 10k of them in a full build.
        label = f"{declaration.project}/{declaration.module} [{environment}]"
        try:
            if isinstance(resolution, Exception):
                raise resolution
            # Compiled before set-up, so a route whose policy cannot be built holds no instance.
            steps = (
                self._gates.compile(
                    declaration,
                    environment,
                    peers,
                    resolution[0].config,
                    secrets,
                    context=resolution[0].placeholders,
                )
                if self._gates is not None
                else None
            )
            instance = cls()
            tasks = self._tasks.child(label)
            try:
                resolved, dependencies = resolution
                module_type = declaration.module_type
                logger = self._loggers.get(module_type) or self._logger(module_type)
                context = ModuleContext(  # (made here: a method of its own per route cost more)
                    project=declaration.project,
                    module=declaration.module,
                    environment=environment,
                    module_type=module_type,
                    config=resolved.config,
                    references=resolved.references,
                    endpoints=resolved.endpoints,
                    timeouts=resolved.timeouts,
                    http=self._http,
                    upstream_pool=self._pool,
                    logger=logger,
                    dependencies=dependencies,
                    modules=self._handles(declaration, environment, dependencies)
                    if dependencies
                    else {},
                    redis=self._redis,
                    metrics=self._metrics.for_module(
                        module_type=module_type,
                        project=declaration.project,
                        module=declaration.module,
                        environment=environment,
                    ),
                    tasks=tasks,
                )
                await instance.setup(context)
                handlers = instance.endpoints()
                if steps is not None and not steps.empty:  # the handlers behind the steps, once
                    handlers = steps.apply(handlers, instance.meters(), instance)
                if self._jobs is not None:  # /v1/jobs, /v1/files, /v1/batches, behind its auth
                    handlers = self._jobs.endpoints(
                        project=declaration.project,
                        module=declaration.module,
                        environment=environment,
                        handlers=handlers,
                        steps=steps,
                        config=resolution[0].config,
                        secrets=secrets,
                    )
                error_renderers = instance.error_renderers()
            except BaseException:
                await tasks.aclose()  # what a failed set-up started must not run on
                raise
        except ConfigError as exc:
            problem = ConfigError(f"Module {label} is not available: {exc.message}")
            # A route rebuilt while Vault is down fails the same way on every retry.
            self._unavailable_log.error(
                problem.message, "%s (%s)", problem.message, declaration.origin
            )
            return _unavailable(declaration, environment, problem)
        except Exception as exc:  # a faulty module must not break the rest of the table
            problem = ConfigError(f"Module {label} failed to start.")
            _log.error("%s (%s: %s)", problem.message, declaration.origin, type(exc).__name__)
            return _unavailable(declaration, environment, problem)
        return Route(
            project=declaration.project,
            module=declaration.module,
            environment=environment,
            loaded=LoadedModule(instance, label, tasks),
            handlers=handlers,
            steps=steps,
            error_renderers=error_renderers,
        )

    def _handles(
        self,
        declaration: ModuleDeclaration,
        environment: str,
        dependencies: Mapping[str, ModuleDependency],
    ) -> dict[str, ModuleHandle]:
        caller = f"{declaration.project}/{declaration.module}"
        return {
            name: ModuleHandle(
                self._current_table,
                project=declaration.project,
                module=name,
                module_type=dependency.module_type,
                environment=environment,
                caller=caller,
            )
            for name, dependency in dependencies.items()
        }

    def _logger(self, module_type: str) -> logging.Logger:
        # One per module type, looked up once: `getLogger` takes the logging lock each call.
        logger = self._loggers.get(module_type)
        if logger is None:
            logger = self._loggers[module_type] = logging.getLogger(f"fd2.module.{module_type}")
        return logger

    def _current_table(self) -> RouteTable:
        return self.table


_slice: Final = Slices()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The garbage collector off for a build (the start-up sync of every project, or one
    project's rebuild), on again after: the objects a build makes all live on, so collections
    during it free nothing and walk the growing table again and again (over half of a
    10k-route build's CPU). Nests."""
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@contextmanager
def startup_build() -> Iterator[None]:
    """`collector_paused` for the start-up build of the whole table, whose objects are then
    frozen (`gc.freeze`) before the collector runs again: they live as long as the worker, and
    the build leaves almost no cyclic garbage (177 objects at 10k routes), while a collection
    would walk every one of them (~0.3 s at 10k routes, and `tune_gc_for_serving` walked them
    again before freezing them anyway). Nothing is served before it ends: the build does not
    yield the loop between routes (`Slices`), which at 10k routes would be ~2,000 loop turns."""
    with collector_paused():
        _slice.whole = True
        try:
            yield
        finally:
            _slice.whole = False
        gc.freeze()


def _may_block(manifests: Sequence[tuple[str, AnyManifest]]) -> bool:
    """Whether resolving these manifests may read a file or ask Vault: any text that looks like
    such a reference, anywhere (a false positive only costs a thread hop). Four substring
    searches: a regular expression with the same alternation took longer than the encoding."""
    for _, manifest in manifests:
        encoded = msgspec.json.encode(manifest)
        # (file:, vault:, config:, encrypted:) spelled out: a generator cost as much as them.
        if (
            b"file:" in encoded
            or b"vault:" in encoded
            or b"config:" in encoded
            or b"encrypted:" in encoded
        ):
            return True
    return False


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
