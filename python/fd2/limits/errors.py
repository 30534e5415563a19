"""429 in OpenAI's shape, with the rate-limit headers of the bucket that refused."""

from __future__ import annotations

from fd2.serving.errors import Fd2Error


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
