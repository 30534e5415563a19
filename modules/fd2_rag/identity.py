"""Which credential goes to the RAG service: the caller's JWT, or nothing.

The devkit checks a configuration's security itself (`security_service.py`): it reads
`Authorization: Bearer <JWT>`, verifies it with the configuration's secret and turns its
`metadata_filter` claim into a filter on the documents. So with `jwt_auth_enabled` the caller's
bearer token goes on as the caller sent it (fd2 has already verified it against
`jwt_module_reference`). Nothing else ever goes: not a token when `jwt_auth_enabled` is off, and
never a caller's fd2 API key, which authenticates to the gateway only.
"""

from __future__ import annotations

from fd2.serving.errors import Unauthorized
from fd2.serving.request import Request


def forwarded_authorization(request: Request, jwt_auth_enabled: bool) -> str | None:
    """The `Authorization` value to send the service, or None; raises 401 when the service
    needs the caller's JWT and the caller authenticated some other way."""
    if not jwt_auth_enabled:
        return None
    identity = request.identity
    header = request.header(b"authorization")
    token = _bearer_jwt(header)
    if identity is not None and not identity.credential.startswith("jwt:"):
        token = None  # an API key, even one shaped like a token, is the gateway's alone
    if token is None:
        raise Unauthorized(
            "This module passes the caller's JWT on to the RAG service: call it with "
            "'Authorization: Bearer <token>' from the project's JWT module.",
            missing=header is None,
        )
    return f"Bearer {token}"


def _bearer_jwt(header: bytes | None) -> str | None:
    if header is None:
        return None
    try:
        text = header.decode("ascii")
    except UnicodeDecodeError:
        return None
    scheme, _, token = text.strip().partition(" ")
    token = token.strip()
    # A compact JWS has three parts, a JWE five.
    if scheme.lower() != "bearer" or token.count(".") not in (2, 4) or " " in token:
        return None
    return token
