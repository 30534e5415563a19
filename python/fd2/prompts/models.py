"""The format of a prompt and its versions (fd2's own: unknown fields are refused).

    {"versions": [{"messages": [{"role": "system", "content": "You review {{ language }} code."},
                                {"role": "user", "content": "{{ code }}"}],
                   "model": "gpt-4o-mini",                 # a model or a model alias
                   "parameters": {"temperature": 0.2, "max_tokens": 800},
                   "input_schema": {"type": "object", "properties": {...}, "required": [...]},
                   "output_schema": {...JSON Schema the answer must match...},
                   "description": "..."}],
     "labels": {"production": 1}}

Versions are numbered from 1 in the order they were made and never change; `latest` is always
the highest; other labels point at a version.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import msgspec

ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
LABEL_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
LATEST: Final = "latest"
PRODUCTION: Final = "production"
PARAMETERS: Final = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "reasoning_effort",
        "n",
    }
)
"""Chat parameters a version may set (the request's own win over them)."""

Role = Literal["system", "developer", "user", "assistant"]


class PromptMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role
    content: str
    """A Jinja template."""


class PromptVersion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    messages: list[PromptMessage]
    model: str | None = None
    """A model or a model alias / deployment name the inference module resolves."""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    output_schema_name: str = "output"
    description: str | None = None
    created_at: int | None = None


class PromptRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One prompt as a manifest (or the store) holds it."""

    versions: list[PromptVersion]
    labels: dict[str, int] = msgspec.field(default_factory=dict)
    description: str | None = None
