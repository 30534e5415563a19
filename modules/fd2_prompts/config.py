"""The `structured_prompt` module's config (its manifest entry's `config`; for a Control Tower
project, `metadata.fd2.modules.<name>.config`, which the Control Tower keeps)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from fd2.serving.errors import ConfigError


class AnalyzeConfig(msgspec.Struct, frozen=True, kw_only=True):
    inference_module: str | None = None
    """The inference module (a dependency) asked by default; None: the only one there is."""
    default_model: str | None = None
    system_prompt: str | None = None
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=5)] = 3
    """Calls per item at most: the first ask and the re-asks quoting validation errors."""
    max_batch_items: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    batch_concurrency: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    max_prompt_chars: Annotated[int, msgspec.Meta(ge=1)] = 100_000
    native_structured_output: bool = True
    """Send the schema as the provider's structured output (else it goes into the prompt)."""
    prompts: dict[str, Any] | None = None
    """Prompts this module serves by id (fd2.prompts format); others come from the Redis store."""


def load_config(raw: Mapping[str, Any]) -> AnalyzeConfig:
    try:
        return msgspec.convert(dict(raw), AnalyzeConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"structured_prompt config is invalid: {exc}") from None
