"""The Structured Prompt Service's request and answer shapes (pure).

POST /v1/analyze {"prompt": "..." | {"id", "version", "variables"}, "format": "json",
                  "schema": {...JSON Schema...},
                  "options": {"include_confidence", "cache_ttl", "provider", "model",
                              "temperature", "max_tokens", "max_attempts", "system_prompt"}}
-> {"id", "object": "analysis", "data", "format", "validation_status": "valid" | "invalid",
    "validation_errors", "attempts", "confidence", "processing_time_ms", "provider_used",
    "model", "cached", "usage"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from fd2.serving.errors import BadRequest

FORMATS: Final = frozenset({"json"})
_OPTIONS: Final = frozenset(
    {
        "include_confidence",
        "cache_ttl",
        "provider",
        "model",
        "temperature",
        "max_tokens",
        "max_attempts",
        "system_prompt",
    }
)
_FIELDS: Final = frozenset({"prompt", "format", "schema", "options"})
CONFIDENCE_NOTE: Final = (
    "Also give your confidence that the data is right, from 0 to 1, in the field 'confidence'."
)


@dataclass(frozen=True, slots=True)
class AnalyzeRequest:
    prompt: str | Mapping[str, Any]
    schema: Mapping[str, Any] | None
    options: Mapping[str, Any]
    format: str = "json"


def decode(body: Any, defaults: Mapping[str, Any] | None = None, where: str = "") -> AnalyzeRequest:
    """One analyze request (`where` prefixes params: `items[3].`); BadRequest names the field."""
    if not isinstance(body, Mapping):
        raise BadRequest(f"'{where or 'body'}' must be a JSON object.", param=where or None)
    for name in body:
        if name not in _FIELDS:
            raise BadRequest(f"Unknown field {where}{name!r}.", param=f"{where}{name}")
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        if not prompt.strip():
            raise BadRequest("'prompt' must not be empty.", param=f"{where}prompt")
    elif not isinstance(prompt, Mapping):
        raise BadRequest(
            "'prompt' must be a string or a stored prompt {id, version, variables}.",
            param=f"{where}prompt",
        )
    fmt = body.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest("'format' must be 'json'.", param=f"{where}format")
    schema = body.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise BadRequest("'schema' must be a JSON Schema object.", param=f"{where}schema")
    options = {**(defaults or {}), **(body.get("options") or {})}
    if not isinstance(body.get("options", {}), Mapping):
        raise BadRequest("'options' must be an object.", param=f"{where}options")
    for name in options:
        if name not in _OPTIONS:
            raise BadRequest(f"Unknown option {name!r}.", param=f"{where}options.{name}")
    _check_options(options, f"{where}options.")
    return AnalyzeRequest(prompt=prompt, schema=schema, options=options, format=str(fmt))


def _check_options(options: Mapping[str, Any], where: str) -> None:
    kinds: dict[str, tuple[type, ...]] = {
        "include_confidence": (bool,),
        "cache_ttl": (int,),
        "provider": (str,),
        "model": (str,),
        "temperature": (int, float),
        "max_tokens": (int,),
        "max_attempts": (int,),
        "system_prompt": (str,),
    }
    for name, value in options.items():
        wanted = kinds[name]
        if value is None:
            continue
        if isinstance(value, bool) and bool not in wanted:
            raise BadRequest(f"Option {name!r} has the wrong type.", param=f"{where}{name}")
        if not isinstance(value, wanted):
            raise BadRequest(f"Option {name!r} has the wrong type.", param=f"{where}{name}")
    ttl = options.get("cache_ttl")
    if isinstance(ttl, int) and ttl < 0:
        raise BadRequest("'cache_ttl' must be 0 or more seconds.", param=f"{where}cache_ttl")


def with_confidence(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The schema asked of the model when a confidence is wanted: the data and a confidence."""
    return {
        "type": "object",
        "properties": {
            "data": dict(schema) if schema is not None else {},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["data", "confidence"],
        "additionalProperties": False,
    }
