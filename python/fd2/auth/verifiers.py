"""What a route's policy verifies tokens with: one jwt_config module's verifier, or several.

A project whose modules lost their `dependencies` on the way through the Control Tower may have
more than one jwt_config module and nothing saying which protects a route; each of them is a trust
anchor of that project, so a token any of them verifies is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fd2.auth.jwt_verifier import TokenRejected


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Mapping[str, Any]: ...


class AnyOfVerifiers:
    __slots__ = ("_verifiers",)

    def __init__(self, verifiers: tuple[TokenVerifier, ...]) -> None:
        self._verifiers = verifiers

    async def verify(self, token: str) -> Mapping[str, Any]:
        reasons = []
        for verifier in self._verifiers:
            try:
                return await verifier.verify(token)
            except TokenRejected as exc:
                reasons.append(str(exc))
        raise TokenRejected("; ".join(reasons))
