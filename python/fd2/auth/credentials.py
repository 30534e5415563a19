"""Finds the credential a request presents: `Authorization: Bearer`, `api-key` or `x-api-key`."""

from __future__ import annotations

from fd2._native import presented_credential as _presented
from fd2.serving.errors import Unauthorized
from fd2.types import Scope


def presented_credential(scope: Scope) -> str | None:
    """The credential of the request, None when it sends none; 401 for a malformed one.

    Printable ASCII without spaces, at most 16 KiB: what API keys, JWS and JWE compact forms
    are made of. Anything else (CR, LF, NUL, spaces, non-ASCII), a scheme other than Bearer or
    two different credentials is refused before it reaches a parser or a log. The search is
    native (`fd2._native.presented_credential`): it runs on every authenticated request."""
    try:
        return _presented(scope["headers"])
    except ValueError:
        raise Unauthorized() from None


def looks_like_jwt(credential: str) -> bool:
    """JWS compact form has 3 dot-separated parts, JWE 5; API keys have no dots."""
    return credential.count(".") in (2, 4)
