"""Decode manifest bytes of either format into typed structs, with errors that name the field."""

from __future__ import annotations

from typing import Any

import msgspec

from fd2.control.manifests.models import ModuleManifest, ProjectManifest
from fd2.serving.errors import ConfigError

AnyManifest = ProjectManifest | ModuleManifest

_json_object = msgspec.json.Decoder(dict[str, Any])


class ManifestError(ConfigError):
    """A manifest that does not decode or validate; the message names the field path."""


def decode_manifest(data: bytes, *, origin: str) -> AnyManifest:
    """Decode one manifest; the format is told by its keys (`project_id` or `module_type`)."""
    try:
        raw = _json_object.decode(data)
    except msgspec.DecodeError as exc:
        raise ManifestError(f"{origin}: not a JSON object ({exc})") from None
    return convert_manifest(raw, origin=origin)


def convert_manifest(raw: dict[str, Any], *, origin: str) -> AnyManifest:
    target: type[AnyManifest]
    if "project_id" in raw:
        target = ProjectManifest
    elif "module_type" in raw:
        target = ModuleManifest
    else:
        raise ManifestError(
            f"{origin}: neither a project manifest (project_id) nor a module manifest (module_type)"
        )
    try:
        return msgspec.convert(raw, target)
    except msgspec.ValidationError as exc:
        raise ManifestError(f"{origin}: {exc}") from None
