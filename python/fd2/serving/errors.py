"""One error hierarchy for fd2: each error knows its HTTP status and OpenAI error type/code.

Everything that leaves fd2 as an error is rendered by `render_error` in OpenAI's shape
`{"error": {"message", "type", "code", "param"}}`. Messages are written for clients: they never
carry a stack trace, a secret or an upstream credential.
"""

from __future__ import annotations

from typing import ClassVar

import orjson


class Fd2Error(Exception):
    """Root of every error fd2 raises on purpose."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code  # type: ignore[misc]  # per-instance override of the class default

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return []

    added_headers: tuple[tuple[bytes, bytes], ...] = ()
    """Headers a caller on the way out added to this error's answer (e.g. which deployments
    were tried: `x-fd2-attempts`), beside the error's own `extra_headers()`."""

    def with_headers(self, headers: list[tuple[bytes, bytes]]) -> Fd2Error:
        self.added_headers = (*self.added_headers, *headers)
        return self


class BadRequest(Fd2Error):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class IncompleteBody(BadRequest):
    """A request body that could not be read to its end (malformed framing, cut short)."""

    code = "invalid_request_body"


class HeadersTooLarge(Fd2Error):
    status = 431
    error_type = "invalid_request_error"
    code = "request_headers_too_large"


class InvalidRoute(BadRequest):
    code = "invalid_route"


class UnknownEnvironment(BadRequest):
    code = "unknown_environment"


class Unauthorized(Fd2Error):
    """401: credentials missing or not accepted. The message never says which part failed."""

    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"

    def __init__(
        self,
        message: str | None = None,
        *,
        missing: bool = False,
        code: str | None = None,
        realm: str = "fd2",
    ) -> None:
        if message is None:
            message = (
                "Missing credentials: send an API key or token as "
                "'Authorization: Bearer <credential>'."
                if missing
                else "Invalid credentials."
            )
        super().__init__(message, code=code)
        self._missing = missing
        self.missing = missing
        """No credential was sent (else one was sent and not accepted)."""
        self._challenge = f'Bearer realm="{realm}"'.encode()

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        # RFC 6750 3.1: `invalid_token` only when a credential was sent.
        if self._missing:
            return [(b"www-authenticate", self._challenge)]
        return [(b"www-authenticate", self._challenge + b', error="invalid_token"')]


class NotFound(Fd2Error):
    status = 404
    error_type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(Fd2Error):
    status = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"allow", ", ".join(self.allowed).encode())]


class RequestTimeout(Fd2Error):
    status = 408
    error_type = "invalid_request_error"
    code = "request_timeout"


class PayloadTooLarge(Fd2Error):
    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class UpstreamError(Fd2Error):
    status = 502
    error_type = "upstream_error"
    code = "bad_gateway"


class ServiceUnavailable(Fd2Error):
    status = 503
    error_type = "server_error"
    code = "service_unavailable"


class UpstreamTimeout(Fd2Error):
    status = 504
    error_type = "upstream_error"
    code = "gateway_timeout"


class ConfigError(Fd2Error):
    """A manifest, reference or setting that cannot be used; the message names what and where."""

    status = 503
    error_type = "server_error"
    code = "module_unavailable"


class SecretError(ConfigError):
    """A secret reference that cannot be resolved. Never carries the secret's value."""


def error_body(
    message: str, error_type: str, code: str | None = None, param: str | None = None
) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "code": code, "param": param}}
    )


def render_error(exc: Fd2Error) -> bytes:
    return error_body(exc.message, exc.error_type, exc.code, exc.param)


INTERNAL_ERROR_BODY = error_body(
    "The gateway failed to handle this request; see the request id in the gateway logs.",
    "server_error",
    "internal_error",
)
