"""Anthropic's errors in OpenAI's terms (pure).

Anthropic answers `{"type": "error", "error": {"type": ..., "message": ...}}`, the same object as
a stream's `error` event. The error type decides the status when it is known (an `error` event
has no status of its own); the HTTP status decides otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from fd2_inference.providers.base import ProviderFailure

_MAX_MESSAGE: Final = 500
# Anthropic's error type -> (status fd2 answers, OpenAI error type, code).
_BY_TYPE: Final = {
    "invalid_request_error": (400, "invalid_request_error", "invalid_request"),
    "authentication_error": (401, "invalid_request_error", "invalid_api_key"),
    "permission_error": (403, "invalid_request_error", "permission_denied"),
    "not_found_error": (404, "invalid_request_error", "not_found"),
    "request_too_large": (413, "invalid_request_error", "request_too_large"),
    "rate_limit_error": (429, "requests", "rate_limit_exceeded"),
    "overloaded_error": (503, "server_error", "overloaded"),
    "api_error": (502, "upstream_error", "bad_gateway"),
    "timeout_error": (504, "upstream_error", "gateway_timeout"),
}
_BY_STATUS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_PASSED_HEADERS: Final = ("retry-after",)
_PASSED_PREFIX: Final = "anthropic-ratelimit-"


def failure(status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
    kind, message = _read(payload)
    if kind not in _BY_TYPE:
        kind = _BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    fd2_status, error_type, code = _BY_TYPE[kind]
    if kind == "invalid_request_error" and 400 < status < 500 and status not in _BY_STATUS:
        fd2_status = status  # another client error (402 billing, 422...) keeps its meaning
    passed = tuple(
        (name.lower(), value)
        for name, value in headers.items()
        if name.lower() in _PASSED_HEADERS or name.lower().startswith(_PASSED_PREFIX)
    )
    text = message or f"The Anthropic API answered {status}."
    return ProviderFailure(
        status=fd2_status,
        type=error_type,
        message=f"Anthropic: {text[:_MAX_MESSAGE]}",
        code=code,
        headers=passed,
    )


def stream_failure(payload: bytes) -> ProviderFailure:
    """The failure an `error` event of a stream reports (its type alone gives the status)."""
    return failure(502, {}, payload)


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
