"""`fd2 check`: what a manifest set would do in a gateway, and what is wrong with it, offline.

Decoding (with field paths), the route table as the gateway's own builder compiles it (so every
placeholder, secret reference form, dependency, auth policy, limit and module config is checked
by the code that serves them), each route's auth mode and why, module types nothing serves,
APISIX routes that do not compile, `jwt_config` claims that cannot be resolved, `vault` modules
that cannot be used, and fd2 settings the Control Tower would drop. No secret value is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import msgspec

from fd2.config import Settings
from fd2.errors import ConfigError
from fd2.gateway import compile_apisix_route
from fd2.manifest_set import ManifestFile, ManifestSet
from fd2.manifests.compile import ModuleDeclaration, resolve_declaration, resolve_dependency
from fd2.manifests.deferred import DeferredValue, DeferredValueError
from fd2.manifests.models import JWT_CONFIG_MODULE_TYPE, SERVED_STATUSES, ProjectManifest
from fd2.manifests.placeholders import PlaceholderContext, resolve_value
from fd2.manifests.portable import portable
from fd2.module import Timeouts
from fd2.offline_secrets import OfflineSecrets, PlaceholderEnviron
from fd2.registry import ModuleRegistry
from fd2.route_inputs import VAULT_MODULE_TYPE
from fd2.route_preview import Preview, RouteRow, preview
from fd2.vault.settings import settings_from_module_config

Severity = Literal["error", "warning", "note"]
_GATEWAY_TYPE: Final = "api_gateway"
_READ_BY_FD2: Final = {
    VAULT_MODULE_TYPE: "type vault: no route; fd2 reads it for the project's vault: references",
    _GATEWAY_TYPE: "type api_gateway: no route; its APISIX routes are served by the modules "
    "that name them (apisix_route + apisix_gateway_module)",
}
"""Module types with no route of their own that fd2 reads for other modules."""
_WHERE_SETTINGS_LIVE: Final = "docs/manifests.md, 'Where fd2's settings live'"


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    severity: Severity
    message: str
    origin: str | None = None
    project: str | None = None
    module: str | None = None
    environments: list[str] = msgspec.field(default_factory=list)
    """Where the same problem holds (empty: the whole module, project or file)."""


class Report(msgspec.Struct, kw_only=True):
    source: str
    kind: str
    manifests: int
    problems: list[Problem]
    routes: list[RouteRow]
    errors: int = 0
    warnings: int = 0


class CheckOptions(msgspec.Struct, frozen=True, kw_only=True):
    check_env: bool = False
    """`env:` references and `${NAME}` placeholders must name variables set here."""
    deny_open: bool = False
    """A route served without authentication is an error, not a warning."""


def check(manifest_set: ManifestSet, settings: Settings, options: CheckOptions) -> Report:
    problems: list[Problem] = []
    good = []
    for read in manifest_set.files:
        if read.manifest is None:
            problems.append(Problem(severity="error", message=str(read.error), origin=read.origin))
            continue
        good.append((read.origin, read.manifest))
        if manifest_set.kind == "directory" and isinstance(read.manifest, ProjectManifest):
            problems += _dropped_by_control_tower(read)
    built = preview(good, settings, check_env=options.check_env) if good else None
    if built is not None:
        problems += _route_problems(built.routes, built.peers, options)
        declarations = [d for peers in built.peers.values() for d in peers.values()]
        secrets = OfflineSecrets(check_env=options.check_env, environ=os.environ)
        environ = PlaceholderEnviron(check_env=options.check_env)
        problems += _claims(declarations, secrets, environ)
        problems += _vault_modules(declarations, secrets, environ, settings)
        problems += _apisix_routes(built.peers, secrets, environ)
        problems += [
            Problem(severity="warning", message=message, origin="route build")
            for message in built.log_warnings
        ]
        problems += _notes(built, declarations, options)
    merged = _merged(problems)
    return Report(
        source=manifest_set.source,
        kind=manifest_set.kind,
        manifests=len(manifest_set.files),
        problems=merged,
        routes=built.routes if built is not None else [],
        errors=sum(p.severity == "error" for p in merged),
        warnings=sum(p.severity == "warning" for p in merged),
    )


def _dropped_by_control_tower(read: ManifestFile) -> list[Problem]:
    """fd2 settings a project manifest keeps where the Control Tower's models drop them."""
    raw = read.raw or {}
    moved = portable(raw)
    problems = []
    for entry, kept in zip(raw.get("modules") or [], moved.get("modules") or [], strict=True):
        fields = [field for field in entry if field not in kept]
        config, kept_config = entry.get("config"), kept.get("config")
        if isinstance(config, dict) and isinstance(kept_config, dict):
            fields += [f"config.{field}" for field in config if field not in kept_config]
        if fields:
            name = entry.get("name")
            problems.append(
                Problem(
                    severity="warning",
                    message=f"{', '.join(fields)} would be dropped by the Control Tower: write "
                    f"them under metadata.fd2.modules.{name} ({_WHERE_SETTINGS_LIVE})",
                    origin=read.origin,
                    project=str(raw.get("project_id")),
                    module=str(name),
                )
            )
    if "api_keys" in raw:
        problems.append(
            Problem(
                severity="warning",
                message="api_keys would be dropped by the Control Tower: write them under "
                f"metadata.fd2.api_keys ({_WHERE_SETTINGS_LIVE})",
                origin=read.origin,
                project=str(raw.get("project_id")),
            )
        )
    return problems


def _route_problems(
    routes: Iterable[RouteRow],
    peers: Mapping[str, Mapping[str, ModuleDeclaration]],
    options: CheckOptions,
) -> list[Problem]:
    declaration_keys = {
        (project, module): bool(declaration.api_keys)
        for project, modules in peers.items()
        for module, declaration in modules.items()
    }
    problems = []
    for row in routes:
        found: list[tuple[Severity, str, bool]] = []
        """(severity, message, holds in every environment of the module)"""
        if row.status == "unavailable":
            found.append(("error", f"answers 503: {row.problem}", False))
        elif row.status == "disabled":
            found.append(("note", f"answers 404: {row.problem}", True))
        elif row.status == "not served" and row.module_type in _READ_BY_FD2:
            found.append(("note", _READ_BY_FD2[row.module_type], True))
        elif row.status == "not served":
            hint = ModuleRegistry.install_hint(row.module_type)
            message = f"type {row.module_type} is served by no installed package (404): {hint}"
            found.append(("warning", message, True))
        open_route = row.auth == "none" and row.module_type != JWT_CONFIG_MODULE_TYPE
        if open_route and row.status in ("serving", "unavailable"):
            found.append(
                (
                    "error" if options.deny_open else "warning",
                    "OPEN: would be served without authentication, to anyone who can reach the "
                    f"gateway (why: {row.auth_reason})",
                    False,
                )
            )
        if row.auth in ("api_key", "either") and not declaration_keys.get(row.key[:2]):
            found.append(
                (
                    "note",
                    "asks for a project API key and the manifest holds none: only keys stored "
                    "in Redis (--redis-url; fd2 keys new) can call it",
                    False,
                )
            )
        found += [("note", note, False) for note in row.notes]
        problems += [
            Problem(
                severity=severity,
                message=message,
                origin=row.origin,
                project=row.project,
                module=row.module,
                environments=[] if every_env else [row.environment],
            )
            for severity, message, every_env in found
        ]
    return problems


def _claims(
    declarations: Iterable[ModuleDeclaration],
    secrets: OfflineSecrets,
    environ: PlaceholderEnviron,
) -> list[Problem]:
    """A jwt_config module's claims are resolved when a token is requested: one that cannot be
    fails every token request of that environment (503), not the module."""
    problems = []
    for declaration in declarations:
        if declaration.module_type != JWT_CONFIG_MODULE_TYPE:
            continue
        for environment in declaration.environments:
            try:
                resolved = resolve_declaration(
                    declaration,
                    environment,
                    secrets=secrets,
                    secret_fields=frozenset(),
                    environ=environ,
                    base_timeouts=Timeouts(),
                )
                claims = resolved.config.get("claims")
                if isinstance(claims, DeferredValue):
                    claims.resolve()
            except DeferredValueError as exc:
                problems.append(
                    _module_problem(
                        declaration,
                        "warning",
                        f"token requests will fail (503): {exc.path}: {exc.reason}",
                        environment,
                    )
                )
            except ConfigError:
                continue  # the module itself is not served: reported with its route
    return problems


def _vault_modules(
    declarations: Iterable[ModuleDeclaration],
    secrets: OfflineSecrets,
    environ: Mapping[str, str],
    settings: Settings,
) -> list[Problem]:
    """A project's `vault` module: where its vault: references are read. fd2 does not log in
    here; its settings and credential references are checked."""
    problems = []
    for declaration in declarations:
        if declaration.module_type != VAULT_MODULE_TYPE:
            continue
        if declaration.status not in SERVED_STATUSES:
            continue
        for environment in declaration.environments:
            context = PlaceholderContext(
                environments=declaration.environment_maps,
                environment=environment,
                environ=environ,
            )
            try:
                config = resolve_value(dict(declaration.entry.config or {}), context, "config")
                vault = settings_from_module_config(config, default_ttl=settings.vault_secret_ttl)
                for reference in (vault.token_ref, vault.role_id_ref, vault.secret_id_ref):
                    if reference is not None:
                        if reference.startswith("vault:"):
                            raise ConfigError(
                                f"{reference!r}: Vault credentials cannot be in Vault"
                            )
                        secrets.resolve(reference)
            except ConfigError as exc:
                problems.append(
                    _module_problem(
                        declaration,
                        "error",
                        f"the project's vault: references will fail: {exc.message}",
                        environment,
                    )
                )
    return problems


def _apisix_routes(
    peers: Mapping[str, Mapping[str, ModuleDeclaration]],
    secrets: OfflineSecrets,
    environ: Mapping[str, str],
) -> list[Problem]:
    """Routes of APISIX gateway modules that no module serves: compiled anyway, so a module that
    names one later does not find it broken. (A route a module serves is compiled with it.)"""
    problems = []
    for modules in peers.values():
        served = {
            (str(config.get("apisix_gateway_module")), str(config.get("apisix_route")))
            for d in modules.values()
            if (config := d.entry.config or {}).get("apisix_route")
        }
        for declaration in modules.values():
            config = declaration.entry.config or {}
            if declaration.module_type != _GATEWAY_TYPE or config.get("gateway_type") not in (
                None,
                "apisix",
            ):
                continue
            for name in _route_names(config.get("routes")):
                if (declaration.module, name) in served:
                    continue
                for environment in declaration.environments:
                    try:
                        gateway = resolve_dependency(
                            declaration, environment, secrets=secrets, environ=environ
                        )
                        compile_apisix_route(gateway.config, name)
                    except ConfigError as exc:
                        problems.append(
                            _module_problem(
                                declaration,
                                "warning",
                                f"APISIX route {name!r} cannot be compiled (no module serves it "
                                f"yet): {exc.message}",
                                environment,
                            )
                        )
    return problems


def _route_names(routes: Any) -> list[str]:
    if not isinstance(routes, list):
        return []
    names = []
    for route in routes:
        if isinstance(route, dict):
            name = route.get("name", route.get("id"))
            if name is not None:
                names.append(str(name))
    return names


def _notes(
    built: Preview, declarations: Iterable[ModuleDeclaration], options: CheckOptions
) -> list[Problem]:
    notes = []
    if built.references:
        vault = sum(reference.startswith("vault:") for reference in built.references)
        notes.append(
            f"{len(built.references)} secret reference(s) checked for their form, none read"
            + (f" ({vault} vault: reference(s): Vault is not contacted)" if vault else "")
            + ("; env: variables checked for presence" if options.check_env else "")
        )
    if built.unset_variables and not options.check_env:
        notes.append(
            "placeholders read variables not set here, checked with a stand-in value: "
            + ", ".join(built.unset_variables)
            + " (--check-env makes an unset one an error)"
        )
    for declaration in declarations:
        config = declaration.entry.config or {}
        if declaration.module_type == JWT_CONFIG_MODULE_TYPE and config.get("jwks_url"):
            notes.append(
                f"{declaration.project}/{declaration.module}: keys from its jwks_url are fetched "
                "when the first token arrives; not checked here"
            )
    return [Problem(severity="note", message=note) for note in notes]


def _module_problem(
    declaration: ModuleDeclaration, severity: Severity, message: str, environment: str
) -> Problem:
    return Problem(
        severity=severity,
        message=message,
        origin=declaration.origin,
        project=declaration.project,
        module=declaration.module,
        environments=[environment],
    )


_ORDER: Final = {"error": 0, "warning": 1, "note": 2}


def _merged(problems: Iterable[Problem]) -> list[Problem]:
    """One entry per problem, with every environment it holds in."""
    by_key: dict[tuple[Any, ...], Problem] = {}
    for problem in problems:
        key = (problem.severity, problem.origin, problem.project, problem.module, problem.message)
        seen = by_key.get(key)
        if seen is None:
            by_key[key] = problem
        elif seen.environments and problem.environments:
            seen.environments += [e for e in problem.environments if e not in seen.environments]
        else:
            seen.environments = []
    return sorted(
        by_key.values(),
        key=lambda p: (p.project or "", p.module or "", _ORDER[p.severity], p.message),
    )
