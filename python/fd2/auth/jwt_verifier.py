"""Verifies access tokens with one jwt_config module's settings (PyJWT for the signature).

The algorithm is fixed by the configuration, never taken from the token: a token whose header
names another one (`none`, or HS256 against an RSA key) is refused before any key is used, and
so is an oversized token. Refresh tokens are refused where an access token is required.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

import jwt
import orjson

from fd2.auth.jwe import JweDecrypter, JweError
from fd2.auth.jwks import JwksKeys

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_TOKEN_BYTES: Final = 8 * 1024


class TokenRejected(Exception):
    """The token is not a valid access token here (the reason stays in the gateway's log)."""


class JwtVerifier:
    __slots__ = (
        "_algorithm",
        "_audience",
        "_decoder",
        "_issuer",
        "_jwe",
        "_jwks",
        "_key",
        "_leeway",
    )

    def __init__(
        self,
        *,
        algorithm: str,
        key: Any = None,
        jwks: JwksKeys | None = None,
        issuer: str | None = None,
        audience: str | list[str] | None = None,
        leeway_s: float = 10.0,
        jwe: JweDecrypter | None = None,
    ) -> None:
        self._algorithm = algorithm
        self._key = key
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._jwe = jwe
        self._decoder = jwt.PyJWT(
            options={
                "require": ["exp"],
                "verify_aud": audience is not None,
                "verify_iss": issuer is not None,
                "enforce_minimum_key_length": False,
            }
        )

    async def verify(self, token: str) -> Mapping[str, Any]:
        """The claims of a valid access token; TokenRejected (with a log-only reason) otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("oversized token")
        if token.count(".") == 4:
            if self._jwe is None:
                raise TokenRejected("encrypted token where none is configured")
            try:
                token = self._jwe.decrypt(token)
            except JweError:
                raise TokenRejected("undecryptable JWE") from None
            if len(token) > MAX_TOKEN_BYTES:
                raise TokenRejected("oversized token")
        elif self._jwe is not None:
            raise TokenRejected("plain JWS where an encrypted token is required")
        header = _header(token)
        if header.get("alg") != self._algorithm:
            raise TokenRejected(f"algorithm {str(header.get('alg'))[:16]!r} is not accepted")
        key = self._key
        if self._jwks is not None:
            kid = header.get("kid")
            key = await self._jwks.key(kid if isinstance(kid, str) else None)
            if key is None:
                raise TokenRejected("unknown key id")
        try:
            claims: dict[str, Any] = self._decoder.decode(
                token,
                key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(type(exc).__name__) from None
        kind = claims.get("type")
        if kind is not None and kind != "access":
            raise TokenRejected("not an access token")
        return claims


def _header(token: str) -> dict[str, Any]:
    head = token.partition(".")[0]
    try:
        value = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise TokenRejected("malformed header") from None
    if not isinstance(value, dict):
        raise TokenRejected("malformed header")
    return value
