"""Turn decoded manifests into module declarations, and resolve one for an environment.

A declaration is what a manifest says of one (project, module) across its environments; resolving
it for an environment substitutes placeholders and secret references, which gives the typed
inputs a module instance is set up from.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import msgspec
import orjson

from fd2.control.environments import canonical_environment
from fd2.control.manifests.deferred import DeferredValue
from fd2.control.manifests.models import (
    DEFAULT_STATUS,
    JWT_CONFIG_MODULE_TYPE,
    ManifestTimeouts,
    ModuleManifest,
    ProjectManifest,
    ProjectModule,
)
from fd2.control.manifests.placeholders import PlaceholderContext, resolve_value
from fd2.control.secrets import ResolvesSecrets, Secret, is_secret_reference
from fd2.module import ModuleDependency, Timeouts, UpstreamEndpoints
from fd2.serving.errors import ConfigError

AnyManifest = ProjectManifest | ModuleManifest
_COMMON = "common"
# Per module type handed over as a dependency: the config fields fd2 reads (others unresolved).
_APPLIED_FIELDS = {
    "api_gateway": frozenset(
        {"gateway_type", "routes", "upstreams", "consumer", "service", "global_plugins"}
    ),
}
# Fields the Control Tower rewrites on every answer: never evidence of a change.
_VOLATILE_FIELDS = frozenset({"created_at", "updated_at"})


class ModuleDeclaration(msgspec.Struct, frozen=True, kw_only=True):
    """One (project, module) as its manifest declares it, before any environment is chosen."""

    project: str
    module: str
    module_type: str
    status: str
    implementation: str | None
    default_environment: str | None
    environments: tuple[str, ...]
    """Canonical names of the environments this module can be served in."""
    origin: str
    entry: ProjectModule | ModuleManifest
    environment_maps: dict[str, dict[str, Any]]
    api_keys: tuple[dict[str, Any], ...] = ()
    """The API key records of the manifest that declares this module."""


class ResolvedModule(msgspec.Struct, frozen=True, kw_only=True):
    """A declaration resolved for one environment: what a module instance is set up from."""

    config: dict[str, Any]
    references: dict[str, Secret | None]
    endpoints: UpstreamEndpoints | None
    timeouts: Timeouts
    placeholders: PlaceholderContext | None = None
    """What the config was resolved against (its secrets recorded), for the route's other
    blocks (auth, limits): one context per route instead of one per use."""


def manifest_project(manifest: AnyManifest) -> str:
    return manifest.project_id if isinstance(manifest, ProjectManifest) else manifest.project


def content_digest(raw: Mapping[str, Any]) -> str:
    """A hash of a manifest's content that ignores key order and the volatile timestamps."""
    stable = raw  # copied only when there is something to leave out
    for field in _VOLATILE_FIELDS:
        if field in raw:
            stable = {key: value for key, value in raw.items() if key not in _VOLATILE_FIELDS}
            break
    return hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()


def declarations(
    manifest: AnyManifest, *, origin: str, default_env: str
) -> list[ModuleDeclaration]:
    if isinstance(manifest, ProjectManifest):
        return _project_declarations(manifest, origin, default_env)
    return [_module_declaration(manifest, origin, default_env)]


def _project_declarations(
    manifest: ProjectManifest, origin: str, default_env: str
) -> list[ModuleDeclaration]:
    environment_maps = {
        name: entry
        for name, entry in (manifest.environments or {}).items()
        if isinstance(entry, dict)
    }
    names = [name for name in environment_maps if name != _COMMON]
    if not names:
        names = [manifest.environment or default_env]
    environments = _canonical_unique(names)
    default = canonical_environment(manifest.environment) if manifest.environment else None
    api_keys = manifest.effective_api_keys()
    return [
        ModuleDeclaration(
            project=manifest.project_id,
            module=entry.name,
            module_type=entry.module_type,
            status=entry.status or DEFAULT_STATUS,
            implementation=entry.runtime.implementation if entry.runtime else None,
            default_environment=default,
            environments=environments,
            origin=origin,
            entry=entry,
            environment_maps=environment_maps,
            api_keys=api_keys,
        )
        for entry in manifest.effective_modules()
    ]


def _module_declaration(
    manifest: ModuleManifest, origin: str, default_env: str
) -> ModuleDeclaration:
    names = list(manifest.endpoints) or [manifest.default_environment or default_env]
    default = manifest.default_environment
    return ModuleDeclaration(
        project=manifest.project,
        module=manifest.module,
        module_type=manifest.module_type,
        status=manifest.status,
        implementation=manifest.runtime.implementation,
        default_environment=canonical_environment(default) if default else None,
        environments=_canonical_unique(names),
        origin=origin,
        entry=manifest,
        environment_maps={},
        api_keys=tuple(manifest.api_keys or ()),
    )


def _canonical_unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(canonical_environment(name) for name in names))


def declaration_context(
    environment_maps: Mapping[str, Any],
    environment: str,
    secrets: ResolvesSecrets,
    environ: Mapping[str, str],
    memo: dict[tuple[Any, ...], Any] | None = None,
) -> PlaceholderContext:
    """What a declaration's placeholders resolve against in one environment: a value reached
    through a placeholder that is itself a secret reference is resolved through `secrets`."""

    def reached(value: str) -> Any:
        return secrets.resolve(value) if is_secret_reference(value) else value

    return PlaceholderContext(
        environments=environment_maps,
        environment=environment,
        environ=environ,
        on_reached_string=reached,
        memo=memo,
    )


def resolve_declaration(
    declaration: ModuleDeclaration,
    environment: str,
    *,
    secrets: ResolvesSecrets,
    secret_fields: frozenset[str],
    environ: Mapping[str, str],
    base_timeouts: Timeouts,
    memo: dict[tuple[Any, ...], Any] | None = None,
    context: PlaceholderContext | None = None,
) -> ResolvedModule:
    """Resolve placeholders and secret references of a declaration for one environment.

    A jwt_config's `claims` stay as written, in a `DeferredValue` that resolves them when used.
    `memo`: strings resolved for other modules of the same project in the same environment, with
    the same secrets (`PlaceholderContext.memo`). `context`: one `declaration_context` made for
    the same environment maps, environment, secrets, environ and memo (shared by a project's
    modules in one environment), else one is made here."""
    if context is None:
        context = declaration_context(
            declaration.environment_maps, environment, secrets, environ, memo
        )
    entry = declaration.entry
    raw = entry.config or {}  # not changed: resolving makes a new dict
    # A jwt_config's `claims` are the JWT service's to read: resolved when a token is requested,
    # so one that cannot be resolved fails that request, not the module or its verifier.
    claims = None
    if declaration.module_type == JWT_CONFIG_MODULE_TYPE:
        raw = dict(raw)
        claims = raw.pop("claims", None)
    config = resolve_value(raw, context, "config")
    if not isinstance(config, dict):
        raise ConfigError("config must be an object")
    for parents, leaf in _field_paths(secret_fields):
        # A dotted field (`jwe_config.encryption_key`) names a value inside a nested object.
        holder: Any = config
        if parents:
            for parent in parents:
                holder = holder.get(parent) if isinstance(holder, dict) else None
            if not isinstance(holder, dict):
                continue
        value = holder.get(leaf)
        if isinstance(value, str):
            holder[leaf] = secrets.resolve(value) if is_secret_reference(value) else Secret(value)
    if claims is not None:
        config["claims"] = DeferredValue(claims, context, secrets, "config.claims")
    if isinstance(entry, ProjectModule):
        return ResolvedModule(
            config=config,
            references={},
            endpoints=None,
            timeouts=_timeouts(config, base_timeouts),
            placeholders=context,
        )
    return ResolvedModule(
        config=config,
        references=_references(entry, secrets),
        endpoints=_endpoints(entry, environment, context),
        timeouts=_merge_timeouts(base_timeouts, entry.timeouts),
        placeholders=context,
    )


@lru_cache(maxsize=256)
def _field_paths(fields: frozenset[str]) -> tuple[tuple[tuple[str, ...], str], ...]:
    """A module class's secret fields split at their dots, once per class (not per route)."""
    paths = []
    for field in fields:
        *parents, leaf = field.split(".")
        paths.append((tuple(parents), leaf))
    return tuple(paths)


def resolve_dependency(
    declaration: ModuleDeclaration,
    environment: str,
    *,
    secrets: ResolvesSecrets,
    environ: Mapping[str, str],
) -> ModuleDependency:
    """A dependency's config for one environment, every secret reference in it a `Secret`."""

    def reached(value: str) -> Any:
        # A reference reached inside a longer string ("Bearer ${...key}") is resolved here, so
        # the string becomes one Secret instead of carrying the reference's text.
        return secrets.resolve(value) if is_secret_reference(value) else value

    context = PlaceholderContext(
        environments=declaration.environment_maps,
        environment=environment,
        environ=environ,
        on_reached_string=reached,
    )
    raw = dict(declaration.entry.config or {})
    applied = _APPLIED_FIELDS.get(declaration.module_type)
    if applied is not None:
        # Only what fd2 applies is resolved: the Control Tower fills an APISIX gateway with
        # `admin_key: "${APISIX_ADMIN_KEY}"` and other fields for a real APISIX, never used here.
        raw = {key: value for key, value in raw.items() if key in applied}
    claims = raw.pop("claims", None) if declaration.module_type == JWT_CONFIG_MODULE_TYPE else None
    config = resolve_value(raw, context, "config")
    if not isinstance(config, dict):
        raise ConfigError("config must be an object")
    if claims is not None:
        # Only the JWT service needs `claims` (through the jwt module's token endpoint): a claim
        # reaching a secret that cannot be resolved leaves them out, and the dependant usable.
        with contextlib.suppress(ConfigError):
            config["claims"] = _secrets_everywhere(
                resolve_value(claims, context, "config.claims"), secrets
            )
    if declaration.module_type == JWT_CONFIG_MODULE_TYPE and not config.get("secret_key"):
        # APISIX-style manifests keep the verification secret beside the gateway route instead.
        fallback = context.environment_entry(environment)
        key = (
            fallback.get("secrets", {}).get("jwt_secret_key")
            if isinstance(fallback, dict)
            else None
        )
        if isinstance(key, str):
            config["secret_key"] = resolve_value(
                key, context, "environments.secrets.jwt_secret_key"
            )
    return ModuleDependency(
        name=declaration.module,
        module_type=declaration.module_type,
        config=_secrets_everywhere(config, secrets),
    )


def _secrets_everywhere(value: Any, secrets: ResolvesSecrets) -> Any:
    if isinstance(value, str):
        return secrets.resolve(value) if is_secret_reference(value) else value
    if isinstance(value, dict):
        return {key: _secrets_everywhere(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_secrets_everywhere(item, secrets) for item in value]
    return value


def _references(manifest: ModuleManifest, secrets: ResolvesSecrets) -> dict[str, Secret | None]:
    resolved: dict[str, Secret | None] = {}
    for reference in manifest.configuration_references:
        try:
            resolved[reference.name] = secrets.resolve(reference.source)
        except ConfigError as exc:
            if reference.required:
                raise ConfigError(f"required reference {reference.name!r}: {exc.message}") from None
            resolved[reference.name] = None
    return resolved


def _endpoints(
    manifest: ModuleManifest, environment: str, context: PlaceholderContext
) -> UpstreamEndpoints | None:
    for name, endpoint_set in manifest.endpoints.items():
        if canonical_environment(name) == environment:
            primary = resolve_value(endpoint_set.primary, context, f"endpoints.{name}.primary")
            fallback = endpoint_set.fallback
            if fallback is not None:
                fallback = resolve_value(fallback, context, f"endpoints.{name}.fallback")
            return UpstreamEndpoints(primary=str(primary), fallback=fallback)
    return None


def _timeouts(config: Mapping[str, Any], base: Timeouts) -> Timeouts:
    raw = config.get("timeouts")
    if raw is None:
        return base
    try:
        return _merge_timeouts(base, msgspec.convert(raw, ManifestTimeouts, strict=False))
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config.timeouts: {exc}") from None


def _merge_timeouts(base: Timeouts, override: ManifestTimeouts | None) -> Timeouts:
    if override is None:
        return base
    return Timeouts(
        connect_s=override.connect_s or base.connect_s,
        read_s=override.read_s or base.read_s,
        total_s=override.total_s or base.total_s,
    )
