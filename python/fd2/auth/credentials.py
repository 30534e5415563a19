"""Finds the credential a request presents: `Authorization: Bearer`, `api-key` or `x-api-key`."""

from __future__ import annotations

import re
from typing import Final

from fd2.serving.errors import Unauthorized
from fd2.types import Scope

MAX_CREDENTIAL_BYTES: Final = 16 * 1024
# Printable ASCII without spaces: what API keys, JWS and JWE compact forms are made of. Anything
# else (CR, LF, NUL, spaces, non-ASCII) is refused before it reaches a parser or a log.
_TOKEN_CHARS: Final = re.compile(rb"[\x21-\x7e]+")


def presented_credential(scope: Scope) -> str | None:
    """The credential of the request, None when it sends none; 401 for a malformed one."""
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, rest = value.partition(b" ")
            if scheme.lower() != b"bearer":
                raise Unauthorized()
            candidate = rest.strip(b" ")
        elif name in (b"api-key", b"x-api-key"):
            candidate = value.strip(b" ")
        else:
            continue
        if found is not None and candidate != found:
            raise Unauthorized()  # two different credentials: refuse rather than pick one
        found = candidate
    if found is None:
        return None
    if len(found) > MAX_CREDENTIAL_BYTES or not _TOKEN_CHARS.fullmatch(found):
        raise Unauthorized()
    return found.decode("ascii")


def looks_like_jwt(credential: str) -> bool:
    """JWS compact form has 3 dot-separated parts, JWE 5; API keys have no dots."""
    return credential.count(".") in (2, 4)
