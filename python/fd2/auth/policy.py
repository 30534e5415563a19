"""A route's auth policy, compiled once: which credentials it accepts and how they are checked."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fd2.auth.api_keys import ApiKey, KeyHasher, KeyTable
from fd2.auth.credentials import looks_like_jwt, presented_credential
from fd2.auth.errors import Forbidden
from fd2.auth.identity import DEFAULT_RATE_LIMIT_WINDOW, Identity, identity_from_claims
from fd2.auth.jwt_verifier import TokenRejected
from fd2.auth.key_store import RedisKeyStore
from fd2.auth.token_cache import VerifiedTokens
from fd2.auth.verifiers import TokenVerifier
from fd2.limits.plan import credential_specs
from fd2.serving.errors import Unauthorized
from fd2.serving.request import Request

_log = logging.getLogger("fd2.auth")


class AuthPolicy:
    """`authenticate` answers who is calling, or raises 401/403."""

    __slots__ = (
        "_hasher",
        "_identities",
        "_keys",
        "_known_keys",
        "_store",
        "_verified",
        "_verifier",
        "environment",
        "mode",
        "module",
        "project",
        "rate_limit_window",
        "require_route_claims",
        "source",
    )

    def __init__(
        self,
        *,
        mode: str,
        project: str,
        module: str,
        environment: str,
        verifier: TokenVerifier | None = None,
        keys: KeyTable | None = None,
        hasher: KeyHasher | None = None,
        identities: Mapping[bytes, Identity | None] | None = None,
        store: RedisKeyStore | None = None,
        require_route_claims: bool = True,
        source: str = "",
        rate_limit_window: str = DEFAULT_RATE_LIMIT_WINDOW,
    ) -> None:
        self.mode = mode
        self.source = source
        """Why the route asks for these credentials (shown to operators)."""
        self.project = project
        self.module = module
        self._store = store
        self._verified = VerifiedTokens()

        self.environment = environment
        self._verifier = verifier
        self._keys = keys
        self._hasher = hasher
        self._identities = identities or {}
        """Per key digest: its identity on this route, or None when it may not use the route."""
        self._known_keys: dict[str, Identity] = {}
        """Keys of the manifest's already checked here, by the key as presented: its HMAC and
        lookup (~11k instructions) once per key, not per request. Only keys that matched get
        in, so it holds at most one entry per key of the table; it lives as long as this
        policy, which a manifest change replaces. (A dict finds a string by a salted hash
        first, so its final comparison gives a caller no timing to learn a key from.)"""
        self.require_route_claims = require_route_claims
        self.rate_limit_window = rate_limit_window

    @property
    def keys(self) -> KeyTable | None:
        """The route's key table (read by routing by project key, `fd2.serving.key_routing`)."""
        return self._keys

    @property
    def hasher(self) -> KeyHasher | None:
        return self._hasher

    @property
    def store(self) -> RedisKeyStore | None:
        return self._store

    def authenticate_now(self, request: Request) -> Identity | None:
        """The caller, when no wait is needed to know (a key of the manifest's, a token
        verified before); None when `authenticate` must be awaited. Raises 401/403 as it does.
        Not for an open route (`mode` none), whose caller is always None."""
        credential = presented_credential(request.scope)
        if credential is None:
            raise Unauthorized(missing=True)
        known = self._known_keys.get(credential)
        if known is not None:
            return known
        if self._verifier is not None and (self._keys is None or looks_like_jwt(credential)):
            return self._verified.get(credential)
        if self._keys is not None and self._hasher is not None:
            key = self._keys.find(self._hasher.digest(credential))
            if key is not None:
                identity = self._key_identity(request, key, self._identities.get(key.digest))
                self._known_keys[credential] = identity
                return identity
            return None
        raise Unauthorized()

    async def authenticate(self, request: Request) -> Identity | None:
        """The caller (None on an open route), or 401/403; waits when it must."""
        if self.mode == "none":
            return None
        known = self.authenticate_now(request)
        if known is not None:
            return known
        credential = presented_credential(request.scope)
        assert credential is not None  # authenticate_now raised otherwise
        if self._verifier is not None and (self._keys is None or looks_like_jwt(credential)):
            return await self._from_token(request, credential)
        assert self._hasher is not None  # authenticate_now raised otherwise
        return await self._from_store(request, self._hasher.digest(credential))

    async def _from_store(self, request: Request, digest: bytes) -> Identity:
        """A key the manifest does not hold: the shared key store's, if there is one."""
        key = None
        identity = None
        if self._store is not None and (key := await self._store.find(digest)) is not None:
            identity = self._remote_identity(key)
        return self._key_identity(request, key, identity)

    def _key_identity(
        self, request: Request, key: ApiKey | None, identity: Identity | None
    ) -> Identity:
        if key is None or key.project != self.project:
            # A key of another project is no credential here at all.
            _log.info("request %s: unknown API key", request.request_id)
            raise Unauthorized()
        if identity is None:
            _log.info("request %s: API key %s not allowed here", request.request_id, key.id)
            raise Forbidden()
        return identity

    def _remote_identity(self, key: ApiKey) -> Identity | None:
        route = (self.module, self.environment)
        if route in key.route_identities:
            return key.route_identities[route]
        identity = None
        if key.allows_route(self.project, self.module, self.environment):
            credential = f"key:{key.id}"
            identity = Identity(
                credential,
                models=key.models,
                limit_specs=credential_specs(key.project, credential, key.limits),
            )
        key.route_identities[route] = identity
        return identity

    async def _from_token(self, request: Request, token: str) -> Identity:
        assert self._verifier is not None
        known = self._verified.get(token)
        if known is not None:
            return known
        try:
            claims = await self._verifier.verify(token)
        except TokenRejected as exc:
            _log.info("request %s: token refused (%s)", request.request_id, exc)
            raise Unauthorized() from None
        identity = identity_from_claims(
            claims,
            project=self.project,
            environment=self.environment,
            require_route_claims=self.require_route_claims,
            rate_limit_window=self.rate_limit_window,
        )
        if identity is None:
            _log.info("request %s: token not valid for this route", request.request_id)
            raise Forbidden()
        self._verified.put(token, identity, claims)
        return identity
