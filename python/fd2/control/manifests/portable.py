"""A project manifest rewritten so that everything fd2 reads survives the Control Tower.

The Control Tower drops module fields its models do not declare. `portable` moves the ones fd2
reads (`auth`, `limits`, `dependencies`, the inference config's `api_key` and `timeouts`, the
project's `api_keys`) under `metadata.fd2`, where it keeps them (docs/manifests.md). Pure: the
input is not changed.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE
from fd2.control.manifests.overlay import OVERLAY_KEY

_MODULE_FIELDS: Final = ("auth", "limits", "dependencies")
# Config fields fd2 reads that the Control Tower's typed configs do not declare, by module type.
_CONFIG_FIELDS: Final = {
    "inference_endpoint": ("api_key", "timeouts"),
    JWT_CONFIG_MODULE_TYPE: (
        "rate_limit_window",
        "allowed_api_keys",
        "public_key",
        "jwks_url",
        "leeway_seconds",
    ),
}


def portable(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with fd2's settings moved under `metadata.fd2`."""
    out = copy.deepcopy(raw)
    metadata = out.setdefault("metadata", {}) or {}
    out["metadata"] = metadata
    overlay = metadata.setdefault(OVERLAY_KEY, {})
    modules = overlay.setdefault("modules", {})
    for module in out.get("modules", []):
        settings: dict[str, Any] = {}
        for field in _MODULE_FIELDS:
            if field in module:
                settings[field] = module.pop(field)
        config = module.get("config")
        fields = _CONFIG_FIELDS.get(module.get("module_type", ""), ())
        if isinstance(config, dict):
            moved = {name: config.pop(name) for name in fields if name in config}
            if moved:
                settings["config"] = moved
        if settings:
            modules.setdefault(module["name"], {}).update(settings)
    if "api_keys" in out:
        overlay["api_keys"] = [*overlay.get("api_keys", []), *out.pop("api_keys")]
    if not modules:
        overlay.pop("modules")
    if not overlay:
        metadata.pop(OVERLAY_KEY)
    return out
