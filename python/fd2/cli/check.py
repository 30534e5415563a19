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
from typing import Final

import msgspec

from fd2.cli.check_modules import (
    GATEWAY_TYPE,
    apisix_route_problems,
    claim_problems,
    vault_module_problems,
)
from fd2.cli.check_problems import Problem, Severity, merged
from fd2.cli.route_preview import Preview, RouteRow, preview
from fd2.config import Settings
from fd2.control.manifest_set import ManifestFile, ManifestSet
from fd2.control.manifests.compile import ModuleDeclaration
from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE, ProjectManifest
from fd2.control.manifests.portable import portable
from fd2.control.offline_secrets import OfflineSecrets, PlaceholderEnviron
from fd2.control.registry import ModuleRegistry
from fd2.control.route_inputs import VAULT_MODULE_TYPE

_READ_BY_FD2: Final = {
    VAULT_MODULE_TYPE: "type vault: no route; fd2 reads it for the project's vault: references",
    GATEWAY_TYPE: "type api_gateway: no route; its APISIX routes are served by the modules "
    "that name them (apisix_route + apisix_gateway_module)",
}
"""Module types with no route of their own that fd2 reads for other modules."""
_WHERE_SETTINGS_LIVE: Final = "docs/manifests.md, 'Where fd2's settings live'"


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
        problems += claim_problems(declarations, secrets, environ)
        problems += vault_module_problems(declarations, secrets, environ, settings)
        problems += apisix_route_problems(built.peers, secrets, environ)
        problems += [
            Problem(severity="warning", message=message, origin="route build")
            for message in built.log_warnings
        ]
        problems += _notes(built, declarations, options)
    found = merged(problems)
    return Report(
        source=manifest_set.source,
        kind=manifest_set.kind,
        manifests=len(manifest_set.files),
        problems=found,
        routes=built.routes if built is not None else [],
        errors=sum(p.severity == "error" for p in found),
        warnings=sum(p.severity == "warning" for p in found),
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
