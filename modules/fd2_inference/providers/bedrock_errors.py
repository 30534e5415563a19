"""Bedrock's errors in OpenAI's terms.

Bedrock answers an error with a JSON body `{"message": "..."}` and names its kind in the
`x-amzn-errortype` header (`ValidationException:http://internal.amazon.com/...`: the part before
the colon). In a ConverseStream the same kinds arrive as `exception` messages whose
`:exception-type` is the name with a lower-case first letter (`throttlingException`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from fd2_inference.providers.base import ProviderFailure, passed_headers

# kind -> (status fd2 answers, OpenAI error type, code)
_INVALID: Final = (400, "invalid_request_error", None)
_AUTH: Final = (401, "authentication_error", "invalid_api_key")
_DENIED: Final = (403, "permission_error", None)
_NOT_FOUND: Final = (404, "not_found_error", "model_not_found")
_TOO_LARGE: Final = (413, "invalid_request_error", "request_too_large")
_RATE: Final = (429, "rate_limit_error", "rate_limit_exceeded")
_OVERLOADED: Final = (503, "server_error", "upstream_overloaded")
_TIMEOUT: Final = (504, "upstream_error", "gateway_timeout")
_BAD_GATEWAY: Final = (502, "upstream_error", "bad_gateway")

KINDS: Final[dict[str, tuple[int, str, str | None]]] = {
    "ValidationException": _INVALID,
    "AccessDeniedException": _DENIED,
    "ResourceNotFoundException": _NOT_FOUND,
    "ThrottlingException": _RATE,
    "ServiceQuotaExceededException": _RATE,
    "ServiceUnavailableException": _OVERLOADED,
    "ModelNotReadyException": _OVERLOADED,
    "ModelTimeoutException": _TIMEOUT,
    "InternalServerException": _BAD_GATEWAY,
    "ModelErrorException": _BAD_GATEWAY,
    "ModelStreamErrorException": _BAD_GATEWAY,
    # AWS's front door rejecting the credentials themselves (not a policy's refusal): what
    # OpenAI calls a bad API key, so 401 rather than AWS's 403.
    "UnrecognizedClientException": _AUTH,
    "InvalidSignatureException": _AUTH,
    "IncompleteSignatureException": _AUTH,
    "MissingAuthenticationTokenException": _AUTH,
    "ExpiredTokenException": _AUTH,
    "InvalidClientTokenId": _AUTH,
}
"""Bedrock's error kinds; a kind not listed falls back to its HTTP status."""

_BY_STATUS: Final[dict[int, tuple[int, str, str | None]]] = {
    400: _INVALID,
    401: _AUTH,
    403: _DENIED,
    404: _NOT_FOUND,
    408: _TIMEOUT,
    413: _TOO_LARGE,
    424: _BAD_GATEWAY,
    429: _RATE,
    503: _OVERLOADED,
    504: _TIMEOUT,
}

_CREDENTIAL_MESSAGE: Final = "The provider refused the gateway's AWS credentials ({kind})."
"""AWS's own text for credential and permission errors names the account, user and role ARNs:
the client gets this instead (the gateway's log has the kind)."""
_MESSAGE_LIMIT: Final = 1000

_PASSED: Final = ("retry-after", "retry-after-ms", "x-amzn-requestid")


def kind_of(name: str) -> str:
    """`ValidationException:http://...` or `validationException` -> `ValidationException`."""
    name = name.partition(":")[0].strip()
    return name[:1].upper() + name[1:]


def _message(payload: bytes) -> str:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    message = body.get("message", body.get("Message"))
    return message[:_MESSAGE_LIMIT] if isinstance(message, str) else ""


def _failure(
    kind: str,
    status: int,
    message: str,
    headers: tuple[tuple[str, str], ...],
) -> ProviderFailure:
    spec = KINDS.get(kind) or _BY_STATUS.get(status)
    if spec is None:
        # Other 4xx keep their status; 5xx (and a success status with an error body) are 502.
        spec = (status, "invalid_request_error", None) if 400 <= status < 500 else _BAD_GATEWAY
    answered, error_type, code = spec
    if answered in (401, 403):
        message = _CREDENTIAL_MESSAGE.format(kind=kind or f"HTTP {status}")
    elif not message:
        message = f"The provider answered {kind or f'HTTP {status}'}."
    return ProviderFailure(
        status=answered, type=error_type, message=message, code=code, headers=headers
    )


def http_failure(status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
    """An error answer (any status but 2xx) in OpenAI's terms, its kind from
    `x-amzn-errortype` (else the body's `__type`, else the status alone)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    kind = lowered.get("x-amzn-errortype", "")
    if not kind:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("__type"), str):
            kind = body["__type"].rpartition("#")[2]
    # Bedrock sends no rate-limit headers itself; a proxy in front may (passed as for every
    # provider).
    passed = (
        *((name, lowered[name]) for name in _PASSED if name in lowered),
        *((name, value) for name, value in passed_headers(lowered) if name not in _PASSED),
    )
    return _failure(kind_of(kind), status, _message(payload), passed)


def exception_failure(name: str, payload: bytes, *, message: str = "") -> ProviderFailure:
    """A ConverseStream `exception` (or `error`) message in OpenAI's terms; the status is the
    one the same kind has as an HTTP answer (502 for a kind not known)."""
    kind = kind_of(name)
    return _failure(kind, 502, (message or _message(payload))[:_MESSAGE_LIMIT], ())
