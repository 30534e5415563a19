"""The inference module's config (an `inference_endpoint` entry of a manifest), typed and checked.

The Control Tower owns this format and may add fields, so unknown keys are ignored. Values reached
through placeholders can arrive as strings ("1024"), hence the lax conversion of numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from fd2.errors import ConfigError
from fd2.module import Timeouts
from fd2.secrets import Secret

_Seconds = Annotated[float, msgspec.Meta(gt=0)]


class TimeoutOverrides(msgspec.Struct, frozen=True, kw_only=True):
    """Per-module upstream time limits; each one given replaces the gateway's value."""

    connect_s: _Seconds | None = None
    read_s: _Seconds | None = None
    total_s: _Seconds | None = None


class InferenceConfig(msgspec.Struct, frozen=True, kw_only=True):
    model_name: str | None = None
    model_version: str | None = None
    endpoint_url: str | None = None
    """A full endpoint URL (e.g. .../v1/chat/completions); the base URL is derived from it."""
    system_prompt: str | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    batch_size: Annotated[int, msgspec.Meta(ge=1)] | None = None
    api_key: Secret | None = None
    """Resolved by the core (a secret field); never a plain string."""
    timeouts: TimeoutOverrides | None = None


def load_config(raw: Mapping[str, Any]) -> InferenceConfig:
    """Decode a module config; ConfigError names the offending field."""
    try:
        return msgspec.convert(dict(raw), InferenceConfig, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec's messages name the field and the expected type, never a string's value.
        raise ConfigError(f"inference module config is invalid: {exc}") from None


def effective_timeouts(base: Timeouts, overrides: TimeoutOverrides | None) -> Timeouts:
    if overrides is None:
        return base
    return Timeouts(
        connect_s=overrides.connect_s if overrides.connect_s is not None else base.connect_s,
        read_s=overrides.read_s if overrides.read_s is not None else base.read_s,
        total_s=overrides.total_s if overrides.total_s is not None else base.total_s,
    )
