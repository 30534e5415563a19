"""Anthropic's errors in OpenAI's terms (pure).

Anthropic answers `{"type": "error", "error": {"type": ..., "message": ...}}`, the same object as
a stream's `error` event. The error type says what happened even where no status does (an
`error` event mid-stream, a proxy's odd status): it is read as the status Anthropic documents
for it, then the shared mapping (`base.standard_failure`) applies: `overloaded_error` (529) ->
503, `api_error` (500) -> 502, `rate_limit_error` -> 429 with `retry-after` and the
`anthropic-ratelimit-*` headers passed through, the client errors keep their status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from fd2_inference.providers.base import ProviderFailure, standard_failure

_MAX_MESSAGE: Final = 500
_STATUS_OF: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def failure(status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
    kind, message = _read(payload)
    documented = _STATUS_OF.get(kind or "")
    text = message or f"The Anthropic API answered {status}."
    return standard_failure(
        documented or status,
        f"Anthropic: {text[:_MAX_MESSAGE]}",
        headers,
        overloaded=kind == "overloaded_error" or status == 529,
    )


def stream_failure(payload: bytes) -> ProviderFailure:
    """The failure an `error` event of a stream reports (an unknown type: a 502)."""
    return failure(500, {}, payload)


def _read(payload: bytes) -> tuple[str | None, str | None]:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None, None
    error = value.get("error") if isinstance(value, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )
