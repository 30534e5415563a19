"""fd2's own settings in a project manifest, in the one place the Control Tower keeps intact.

The Control Tower stores a module through its typed models and silently drops every field they do
not declare: a module's `auth`, `limits` and `dependencies`, the inference config's `api_key` and
`timeouts`, the project's `api_keys`. It keeps the project's `metadata` as it is, so fd2 also reads
them from there:

    "metadata": {"fd2": {
        "api_keys": [...],
        "modules": {"<module>": {"auth": {...}, "limits": {...}, "dependencies": [...],
                                 "config": {...merged into the module's config...}}}}}

A module of a type the Control Tower cannot store at all is declared here whole, with its
`module_type` (and `status`, `config`, ...), and is served as if it were in `modules`.

`apply_overlay` folds these into each module entry when a manifest is turned into declarations,
so everything downstream reads one effective entry, whichever place the setting came from.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

OVERLAY_KEY: Final = "fd2"


class ModuleSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What fd2 reads of one module from `metadata.fd2.modules.<name>`."""

    module_type: str | None = None
    """Only for a module declared here whole, one the manifest's `modules` list cannot hold: a
    type the Control Tower has no model for (its `ModuleType` enum refuses it), such as
    `structured_prompt`. A module of the list keeps the type written there."""
    status: str | None = None
    description: str | None = None
    auth: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    redaction: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    dependencies: list[str] | None = None
    config: dict[str, Any] | None = None
    """Merged into the module's `config`; a key here wins over the same key there (the Control
    Tower fills its own defaults into `config`, which an operator must be able to override)."""


class ProjectSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`metadata.fd2`: the project's fd2 settings (our format, so unknown keys are refused)."""

    api_keys: list[dict[str, Any]] | None = None
    modules: dict[str, ModuleSettings] = msgspec.field(default_factory=dict)


EMPTY: Final = ProjectSettings()


def project_settings(metadata: dict[str, Any] | None) -> ProjectSettings:
    """`metadata.fd2` decoded; a ValueError names the offending path."""
    raw = (metadata or {}).get(OVERLAY_KEY)
    if raw is None:
        return EMPTY
    try:
        return msgspec.convert(raw, ProjectSettings)
    except msgspec.ValidationError as exc:
        # msgspec's path starts at `$`, which is `metadata.fd2` here.
        raise ValueError(f"metadata.{OVERLAY_KEY}: {exc}") from None


def merged_field(module: str, field: str, own: Any, overlay: Any) -> Any:
    """One of auth/limits/dependencies: from the module entry or from the overlay, never both
    (two sources that might disagree would make the effective policy a guess)."""
    if own is not None and overlay is not None:
        raise ValueError(
            f"module {module!r} sets {field} both in its entry and in "
            f"metadata.{OVERLAY_KEY}.modules.{module}.{field}; keep one"
        )
    return overlay if overlay is not None else own


def merged_config(own: dict[str, Any] | None, overlay: dict[str, Any] | None) -> Any:
    if not overlay:
        return own
    return {**(own or {}), **overlay}
