"""403 in OpenAI's shape (401 is `fd2.serving.errors.Unauthorized`, shared with the admin API;
429 is `fd2.limits.errors.RateLimited`). Messages never say which part of a credential failed."""

from __future__ import annotations

from fd2.serving.errors import Fd2Error


class Forbidden(Fd2Error):
    status = 403
    error_type = "invalid_request_error"
    code = "permission_denied"

    def __init__(self) -> None:
        super().__init__("These credentials are not allowed to use this resource.")
