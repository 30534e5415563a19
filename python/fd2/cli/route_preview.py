"""The route table a manifest set compiles to, built offline by the gateway's own route builder.

`fd2 check` and `fd2 routes` hand the manifests to `RouteBuilder` with the worker's module
registry and gate compiler, but with `OfflineSecrets` (references checked, never read), no Vault,
no Redis, and an HTTP client that is never used to call out at build time (JWKS keys are fetched
by a verifier on its first token). Each route is then read back: served or why not, its auth mode
and why (`fd2.auth.choice.choose_auth`, the choice the gate compiler makes), its endpoints and
its limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, Literal

import aiohttp
import msgspec

from fd2.audit.writer import AuditWriter
from fd2.auth.api_keys import KeyHasher
from fd2.auth.choice import AuthChoice, choose_auth
from fd2.auth.gateway_route import gateway_route_of
from fd2.auth.jwt_settings import placeholder_context
from fd2.config import Settings
from fd2.control.environments import canonical_environment
from fd2.control.manifests.compile import (
    AnyManifest,
    ModuleDeclaration,
    declarations,
    manifest_project,
)
from fd2.control.manifests.models import SERVED_STATUSES
from fd2.control.manifests.placeholders import allow_environment_variables, resolve_value
from fd2.control.offline_secrets import OfflineSecrets, PlaceholderEnviron
from fd2.control.route_builder import RouteBuilder
from fd2.control.route_table import Route
from fd2.limits.gcra import LocalLimiter
from fd2.limits.plan import LimitPlan
from fd2.limits.specs import LIMIT_FIELDS, LimitSpec
from fd2.pipeline.compiler import StepCompiler
from fd2.serving.errors import ConfigError, NotFound
from fd2.telemetry.logs import redact

Status = Literal["serving", "unavailable", "disabled", "not served"]
_UNSERVED_TEMPLATE: Final = "module %s: type %s is served by no installed package; %s"
_GATEWAY_FIELDS: Final = ("apisix_route", "apisix_gateway_module")


class RouteRow(msgspec.Struct, kw_only=True):
    """One (project, module, environment) as the gateway would serve it."""

    project: str
    module: str
    environment: str
    module_type: str
    origin: str
    status: Status
    problem: str | None = None
    """Why the route is not served (the message the gateway answers or logs)."""
    auth: str | None = None
    """The auth mode: none, api_key, jwt or either (None when it cannot be chosen)."""
    auth_reason: str | None = None
    endpoints: list[str] = msgspec.field(default_factory=list)
    limits: list[str] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.project, self.module, self.environment)

    @property
    def label(self) -> str:
        return f"{self.project}/{self.module} [{self.environment}]"


class Preview(msgspec.Struct, kw_only=True):
    routes: list[RouteRow]
    peers: dict[str, dict[str, ModuleDeclaration]]
    """Project → module → the declaration the route was built from."""
    references: list[str]
    """Secret references the build met (none was read)."""
    unset_variables: list[str]
    """`${NAME}` placeholders that read a variable not set here."""
    log_warnings: list[str]
    """What the builder logged as warnings (secret values cannot appear: none was read)."""


def preview(
    manifests: Sequence[tuple[str, AnyManifest]], settings: Settings, *, check_env: bool
) -> Preview:
    """Compiles `(origin, manifest)` pairs as the gateway would; blocking (runs its own loop)."""
    return asyncio.run(_preview(manifests, settings, check_env))


def peers_of(
    manifests: Sequence[tuple[str, AnyManifest]], default_env: str
) -> dict[str, dict[str, ModuleDeclaration]]:
    """Project → module → declaration; a module declared twice is the later one, as built."""
    projects: dict[str, dict[str, ModuleDeclaration]] = {}
    for origin, manifest in manifests:
        peers = projects.setdefault(manifest_project(manifest), {})
        for declaration in declarations(manifest, origin=origin, default_env=default_env):
            peers[declaration.module] = declaration
    return projects


async def _preview(
    manifests: Sequence[tuple[str, AnyManifest]], settings: Settings, check_env: bool
) -> Preview:
    allow_environment_variables(settings.manifest_env_allow)
    default_env = canonical_environment(settings.default_env)
    peers = peers_of(manifests, default_env)
    by_project: dict[str, list[tuple[str, AnyManifest]]] = {}
    for origin, manifest in manifests:
        by_project.setdefault(manifest_project(manifest), []).append((origin, manifest))
    environ = PlaceholderEnviron(check_env=check_env)
    secrets = OfflineSecrets(check_env=check_env, environ=os.environ)
    with _captured_warnings() as warnings:
        rows = await _build(by_project, peers, settings, secrets, environ)
    failed = {row.project for row in rows.values() if row.status == "unavailable"}
    if failed and secrets.references:
        # Places that parse key material (a PEM public key) fail on a text stand-in: a route
        # that compiles once its references hold a public key is fine as far as fd2 can tell.
        retry = OfflineSecrets(shape="pem", check_env=check_env, environ=os.environ)
        with _captured_warnings():
            again = await _build(
                {p: by_project[p] for p in sorted(failed)}, peers, settings, retry, environ
            )
        for key, row in again.items():
            if rows[key].status == "unavailable" and row.status == "serving":
                row.notes.append(
                    "compiles when its secret references hold a public key (PEM); their values "
                    "were not read"
                )
                rows[key] = row
    return Preview(
        routes=[rows[key] for key in sorted(rows)],
        peers=peers,
        references=sorted(secrets.references),
        unset_variables=sorted(environ.unset),
        log_warnings=list(dict.fromkeys(warnings)),
    )


async def _build(
    by_project: Mapping[str, Sequence[tuple[str, AnyManifest]]],
    peers: Mapping[str, Mapping[str, ModuleDeclaration]],
    settings: Settings,
    secrets: OfflineSecrets,
    environ: PlaceholderEnviron,
) -> dict[tuple[str, str, str], RouteRow]:
    http = aiohttp.ClientSession(trust_env=False)
    gates = StepCompiler(
        secrets=secrets,
        environ=environ,
        http=http,
        limiter=LocalLimiter(),
        hasher=KeyHasher(b""),
        default_auth=settings.default_auth,
        # Modules with `audit` compile as `fd2 serve` would: served when it has a sink.
        audit=AuditWriter([]) if settings.audit_file or settings.audit_stream else None,
    )
    builder = RouteBuilder.from_settings(
        settings, secrets=secrets, http=http, environ=environ, gates=gates
    )
    rows: dict[tuple[str, str, str], RouteRow] = {}
    try:
        for number, (project, manifests) in enumerate(sorted(by_project.items())):
            await builder.apply_project(project, manifests, f"preview-{number}")
        for (project, module), group in builder.table.groups.items():
            declaration = peers[project][module]
            for environment, route in group.by_environment.items():
                row = _row(declaration, environment, route)
                _add_auth(row, declaration, peers[project], secrets, environ, settings)
                rows[row.key] = row
    finally:
        await builder.close()
        await http.close()
    return rows


def _row(declaration: ModuleDeclaration, environment: str, route: Route) -> RouteRow:
    row = RouteRow(
        project=declaration.project,
        module=declaration.module,
        environment=environment,
        module_type=declaration.module_type,
        origin=declaration.origin,
        status="serving",
    )
    problem = route.unavailable
    if problem is not None:
        row.problem = problem.message
        if declaration.status not in SERVED_STATUSES:
            row.status = "disabled"
        elif isinstance(problem, NotFound):
            row.status = "not served"
        else:
            row.status = "unavailable"
        return row
    row.endpoints = _endpoints(route)
    if route.steps is not None:
        row.auth, row.auth_reason = route.steps.policy.mode, route.steps.policy.source
        row.limits = limit_texts(route.steps.limits)
    return row


def _add_auth(
    row: RouteRow,
    declaration: ModuleDeclaration,
    peers: Mapping[str, ModuleDeclaration],
    secrets: OfflineSecrets,
    environ: PlaceholderEnviron,
    settings: Settings,
) -> None:
    """The mode `choose_auth` picks for the route, and why (also for routes not served, so that
    a check says what they would ask for once fixed)."""
    if row.status in ("disabled", "not served"):
        return
    try:
        choice = auth_choice(declaration, row.environment, peers, secrets, environ, settings)
    except ConfigError as exc:
        if row.auth is None:
            row.auth_reason = f"cannot be chosen: {exc.message}"
        return
    if row.auth is None:
        # A serving route without a gate is open (the compiler drops an empty gate).
        row.auth, row.auth_reason = choice.mode, choice.reason
    elif row.auth != choice.mode:
        row.notes.append(
            f"choose_auth says {choice.mode} ({choice.reason}); the gate has {row.auth}"
        )


def auth_choice(
    declaration: ModuleDeclaration,
    environment: str,
    peers: Mapping[str, ModuleDeclaration],
    secrets: OfflineSecrets,
    environ: Mapping[str, str],
    settings: Settings,
) -> AuthChoice:
    """What the gate compiler decides for this route, from the same inputs."""
    context = placeholder_context(declaration, environment, secrets, environ)
    auth = resolve_value(dict(declaration.entry.auth or {}), context, "auth")
    config = declaration.entry.config or {}
    named: dict[str, Any] = {
        field: resolve_value(config[field], context, f"config.{field}")
        for field in _GATEWAY_FIELDS
        if field in config
    }
    gateway = gateway_route_of(named, peers, environment, secrets, environ)
    return choose_auth(declaration, auth, peers, settings.default_auth, gateway)


def _endpoints(route: Route) -> list[str]:
    paths: Sequence[str] = list(route.handlers)
    if route.loaded is not None:
        # A module that registers handlers only to refuse them says what it serves.
        try:
            described: Any = route.loaded.instance.describe().get("endpoints")
        except Exception:  # a module failing to describe itself keeps its handler list
            described = None
        if isinstance(described, list) and all(isinstance(path, str) for path in described):
            paths = described
    prefix = f"/{route.project}/{route.module}"
    return [
        f"{method} {prefix}{path}"
        for path in sorted(paths)
        for method in sorted(route.handlers.get(path, {}))
    ]


def limit_texts(plan: LimitPlan) -> list[str]:
    """A route's buckets as a manifest writes them, with what each is counted per."""
    texts = [_limit_text(spec, None) for spec in plan.static_specs]
    texts += [_limit_text(spec, "per client address") for spec in plan.per_client]
    texts += [_limit_text(spec, "per caller") for spec in plan.per_caller]
    return texts


def _limit_text(spec: LimitSpec, per: str | None) -> str:
    scope, _, rest = spec.key.partition(":")
    field = rest.rpartition(":")[2]
    if field in LIMIT_FIELDS:
        where = "the project's modules together" if scope == "project" else "this route"
        return f"{field} {spec.limit} ({per or where})"
    plugin = field  # an APISIX rule: `...:apisix:<index>:<plugin>`
    window_s = round(spec.capacity_us / 1_000_000, 3)
    return f"{plugin}: {spec.limit} {spec.kind} per {window_s:g} s ({per or 'this route'})"


class _WarningRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Errors are the routes that are not served, reported from the table itself.
        if record.levelno < logging.ERROR and record.msg != _UNSERVED_TEMPLATE:
            self.messages.append(redact(record.getMessage()))


@contextlib.contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """fd2's log records during a build: warnings kept for the report, nothing printed."""
    logger = logging.getLogger("fd2")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    handler = _WarningRecords()
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield handler.messages
    finally:
        logger.handlers[:], logger.propagate, _ = saved
        logger.setLevel(saved[2])
