"""403 and 429 in OpenAI's shape (401 is `fd2.serving.errors.Unauthorized`, shared with the
admin API).
Messages never say which part of a credential failed."""

from __future__ import annotations

from fd2.serving.errors import Fd2Error


class Forbidden(Fd2Error):
    status = 403
    error_type = "invalid_request_error"
    code = "permission_denied"

    def __init__(self) -> None:
        super().__init__("These credentials are not allowed to use this resource.")


class RateLimited(Fd2Error):
    status = 429
    error_type = "requests"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, kind: str, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(message)
        self.error_type = kind  # type: ignore[misc]  # OpenAI says `requests` or `tokens`
        self._headers = headers

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers
