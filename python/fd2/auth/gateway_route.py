"""What an APISIX route the module names asks of fd2's auth: its jwt-auth.

The Control Tower's own manifests describe auth and limits as APISIX plugins on the route the
inference module names (`apisix_route` + `apisix_gateway_module`). fd2 is the gateway, so it
enforces them itself: `jwt-auth` becomes a verifier that also checks the consumer's key claim
(here); `limit-count` / `limit-req` become buckets (`fd2.limits.route_limits`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fd2.auth.jwt_verifier import JwtVerifier, TokenRejected
from fd2.auth.verifiers import TokenVerifier
from fd2.control.gateway import GatewayRoute, compile_apisix_route
from fd2.control.gateway.route import JwtAuthSpec
from fd2.control.manifests.compile import ModuleDeclaration, resolve_dependency
from fd2.control.secrets import ResolvesSecrets
from fd2.serving.errors import ConfigError


def gateway_route_of(
    config: Mapping[str, Any],
    peers: Mapping[str, ModuleDeclaration],
    environment: str,
    secrets: ResolvesSecrets,
    environ: Mapping[str, str],
) -> GatewayRoute | None:
    """The compiled route a module's config names, or None when it names none."""
    route_name = config.get("apisix_route")
    module_name = config.get("apisix_gateway_module")
    if not route_name or not module_name:
        return None
    peer = peers.get(str(module_name))
    if peer is None:
        raise ConfigError(f"apisix_gateway_module {module_name!r} is not a module of the project")
    try:
        resolved = resolve_dependency(peer, environment, secrets=secrets, environ=environ)
        return compile_apisix_route(resolved.config, str(route_name))
    except ConfigError as exc:
        raise ConfigError(f"apisix_gateway_module {module_name!r}: {exc.message}") from None


class KeyClaimVerifier:
    """A token of the route's consumer: it verifies, and its key claim names that consumer
    (APISIX finds the consumer by this claim, so a token for another consumer is refused)."""

    __slots__ = ("_claim", "_inner", "_key")

    def __init__(self, inner: TokenVerifier, claim: str, key: str) -> None:
        self._inner = inner
        self._claim = claim
        self._key = key

    async def verify(self, token: str) -> Mapping[str, Any]:
        claims = await self._inner.verify(token)
        if claims.get(self._claim) != self._key:
            raise TokenRejected(f"the {self._claim!r} claim does not name the route's consumer")
        return claims


def consumer_verifier(spec: JwtAuthSpec, leeway_s: float = 10.0) -> TokenVerifier | None:
    """A verifier from the route's jwt-auth consumer; None when the gateway module has none."""
    if spec.key is None:
        return None
    key: Any
    if spec.secret is not None:
        raw = spec.secret.reveal()
        if spec.base64_secret:
            try:
                key = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError("jwt-auth consumer: base64_secret is not base64") from None
        else:
            key = raw.encode()
    elif spec.public_key:
        try:
            key = load_pem_public_key(spec.public_key.encode())
        except ValueError:
            raise ConfigError("jwt-auth consumer: public_key is not a PEM key") from None
    else:
        return None
    leeway = max(leeway_s, float(spec.lifetime_grace_period))
    inner = JwtVerifier(algorithm=spec.algorithm, key=key, leeway_s=leeway)
    return KeyClaimVerifier(inner, spec.key_claim_name, spec.key)
