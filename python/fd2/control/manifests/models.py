"""msgspec types of both manifest formats, as the Control Tower and operators write them.

These types are tolerant of unknown fields (the Control Tower may add some); cross-field checks live
in `__post_init__`. They are the raw, validated form: `compile.py` turns them into runtime specs.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from fd2.control.manifests.overlay import merged_config, merged_field, project_settings

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Statuses the Control Tower knows; any other value is kept (and not served), so that a status
# added there later never makes a whole project manifest undecodable here. A null status is the
# Control Tower's way of leaving it unset, and it serves such a module: so does fd2.
SERVED_STATUSES = frozenset({"enabled", "deprecated", "development"})
DEFAULT_STATUS = "enabled"
JWT_CONFIG_MODULE_TYPE = "jwt_config"
"""The module type holding a project's JWT settings (verification and the token endpoint)."""


def _check_name(kind: str, value: str) -> None:
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{kind} {value!r} must match {NAME_PATTERN.pattern}")


class ProjectModule(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a project manifest's `modules` list."""

    module_type: str
    name: str
    version: str | float | None = None
    status: str | None = None
    """None (the Control Tower's null) is served as `enabled`."""
    description: str | None = None
    dependencies: list[str] | None = None
    config: dict[str, Any] | None = None
    runtime: Implementation | None = None
    auth: dict[str, Any] | None = None
    """Who may call the module (docs/security.md); default: a JWT when it depends on a
    jwt_config module, else anyone."""
    limits: dict[str, Any] | None = None
    """Rate limits of this module, overriding `environments.<env>.limits` field by field."""
    cache: dict[str, Any] | None = None
    """The response cache of this module (docs/cache.md); none: not cached."""
    redaction: dict[str, Any] | None = None
    """PII redaction of this module (docs/privacy.md); none: nothing scanned."""
    audit: dict[str, Any] | None = None
    """The audit trail of this module (docs/privacy.md); none: not audited."""

    def __post_init__(self) -> None:
        _check_name("module name", self.name)


class ProjectManifest(msgspec.Struct, frozen=True, kw_only=True):
    """The Control Tower's project manifest (`GET /manifests/{project_id}`)."""

    project_id: str
    project_name: str | None = None
    version: str | float | None = None
    owner: str | None = None
    environment: str | None = None
    environments: dict[str, Any] | None = None
    """`common` plus one entry per environment; entries that are not objects are ignored."""
    modules: list[ProjectModule] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] | None = None
    api_keys: list[dict[str, Any]] | None = None
    """The project's API keys, as hashes (docs/security.md)."""
    created_at: str | None = None
    updated_at: str | None = None

    def __post_init__(self) -> None:
        _check_name("project_id", self.project_id)
        seen: set[str] = set()
        for module in self.modules:
            if module.name in seen:
                raise ValueError(f"module name {module.name!r} appears twice")
            seen.add(module.name)
        # Checked here so that a bad `metadata.fd2` rejects the manifest when it is decoded
        # (the last good version keeps serving) rather than surprising a route later.
        self.effective_modules()

    def effective_modules(self) -> list[ProjectModule]:
        """The modules with `metadata.fd2` folded in (docs/manifests.md)."""
        settings = project_settings(self.metadata)
        if not settings.modules:
            # The common case (nothing under `metadata.fd2.modules`): the entries as written.
            # Asked twice per manifest (decoding checks it, declarations read it).
            return list(self.modules)
        by_name = {module.name: module for module in self.modules}
        unknown = sorted(
            name
            for name, extra in settings.modules.items()
            if name not in by_name and extra.module_type is None
        )
        if unknown:
            raise ValueError(
                "metadata.fd2.modules names module(s) the manifest does not have: "
                + ", ".join(unknown)
                + " (a module declared there whole needs its module_type)"
            )
        effective = []
        for module in self.modules:
            extra = settings.modules.get(module.name)
            if extra is not None and extra.module_type is not None:
                raise ValueError(
                    f"metadata.fd2.modules.{module.name}.module_type: the module is in the "
                    "manifest's modules list, whose module_type it keeps"
                )
            if extra is not None:
                module = msgspec.structs.replace(
                    module,
                    auth=merged_field(module.name, "auth", module.auth, extra.auth),
                    limits=merged_field(module.name, "limits", module.limits, extra.limits),
                    cache=merged_field(module.name, "cache", module.cache, extra.cache),
                    redaction=merged_field(
                        module.name, "redaction", module.redaction, extra.redaction
                    ),
                    audit=merged_field(module.name, "audit", module.audit, extra.audit),
                    dependencies=merged_field(
                        module.name, "dependencies", module.dependencies, extra.dependencies
                    ),
                    config=merged_config(module.config, extra.config),
                )
            effective.append(module)
        for name, extra in settings.modules.items():
            if name not in by_name and extra.module_type is not None:
                effective.append(
                    ProjectModule(
                        module_type=extra.module_type,
                        name=name,
                        status=extra.status,
                        description=extra.description,
                        config=extra.config,
                        auth=extra.auth,
                        limits=extra.limits,
                        cache=extra.cache,
                        redaction=extra.redaction,
                        audit=extra.audit,
                        dependencies=extra.dependencies,
                    )
                )
        return effective

    def effective_api_keys(self) -> tuple[dict[str, Any], ...]:
        """The project's API key records: top-level `api_keys` and `metadata.fd2.api_keys`."""
        return (*(self.api_keys or ()), *(project_settings(self.metadata).api_keys or ()))


class Implementation(msgspec.Struct, frozen=True, kw_only=True):
    """A manifest's `runtime` block: which code serves the module (not to be confused with
    `fd2.control.runtime.Runtime`, a worker's control plane)."""

    type: str = "python"
    implementation: str | None = None
    """A class path inside an allowed package (`fd2.control.registry`); None: the module type's
    class."""


class EndpointSet(msgspec.Struct, frozen=True, kw_only=True):
    primary: str
    fallback: str | None = None


class ConfigurationReference(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source: str
    required: bool = True


class ApiSchema(msgspec.Struct, frozen=True, kw_only=True):
    openapi_ref: str | None = None
    endpoints: list[str] = msgspec.field(default_factory=list)


class ManifestTimeouts(msgspec.Struct, frozen=True, kw_only=True):
    connect_s: float | None = None
    read_s: float | None = None
    total_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect_s", "read_s", "total_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"timeouts.{name} must be positive")


class ModuleManifest(msgspec.Struct, frozen=True, kw_only=True):
    """The single-module manifest of the front-door design (one module of one project)."""

    project: str
    module: str
    module_type: str
    version: str | float | None = None
    status: str = "enabled"
    runtime: Implementation = msgspec.field(default_factory=Implementation)
    endpoints: dict[str, EndpointSet] = msgspec.field(default_factory=dict)
    configuration_references: list[ConfigurationReference] = msgspec.field(default_factory=list)
    api_schema: ApiSchema | None = None
    timeouts: ManifestTimeouts | None = None
    default_environment: str | None = None
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    auth: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    redaction: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    api_keys: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        _check_name("project", self.project)
        _check_name("module", self.module)
        names = [ref.name for ref in self.configuration_references]
        if len(names) != len(set(names)):
            raise ValueError("configuration_references names must be unique")
