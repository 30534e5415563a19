"""Compiles a route's gate from its manifests: the auth policy and the rate limits.

Runs when a route is compiled, never per request. A policy that cannot be built (a missing JWT
secret, a malformed key record) makes the route unavailable (503): it never falls back to letting
everyone in.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from fd2.auth.api_keys import ApiKey, KeyHasher, KeyTable, decode_records
from fd2.auth.gate import Gate
from fd2.auth.identity import Identity
from fd2.auth.jwt_settings import JwtVerifiers, placeholder_context
from fd2.auth.key_store import RedisKeyStore
from fd2.auth.policy import MODES, AuthPolicy
from fd2.config import Settings
from fd2.errors import ConfigError
from fd2.limits.gcra import LocalLimiter
from fd2.limits.plan import Limiter, compile_plan, credential_specs
from fd2.limits.prompt_tokens import warm_up
from fd2.limits.redis_client import make_redis
from fd2.limits.shared import SharedLimiter
from fd2.manifests.compile import ModuleDeclaration
from fd2.manifests.placeholders import resolve_value
from fd2.secrets import SecretResolver

JWT_MODULE_TYPE: Final = "jwt_config"
DEFAULT_COMPLETION_BOUND: Final = 1024


class GateCompiler:
    """Shared by every route of a worker: the limiter, the key hasher, the JWT verifiers."""

    def __init__(
        self,
        *,
        secrets: SecretResolver,
        environ: Mapping[str, str],
        http: aiohttp.ClientSession,
        limiter: Limiter,
        hasher: KeyHasher,
        key_store: RedisKeyStore | None = None,
    ) -> None:
        self._key_store = key_store
        self._secrets = secrets
        self._environ = environ
        self._limiter = limiter
        self._hasher = hasher
        self._verifiers = JwtVerifiers(secrets=secrets, environ=environ, http=http)
        self._warming: asyncio.Future[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, secrets: SecretResolver, http: aiohttp.ClientSession
    ) -> GateCompiler:
        """The worker's compiler: Redis-shared limits and keys when `redis_url` is set."""
        pepper = b""
        if settings.api_key_pepper_ref:
            pepper = secrets.resolve(settings.api_key_pepper_ref).reveal().encode()
        redis = (
            make_redis(settings.redis_url, timeout=settings.redis_timeout)
            if settings.redis_url
            else None
        )
        limiter: Limiter = (
            SharedLimiter(redis, on_failure=settings.limits_on_redis_failure)
            if redis is not None
            else LocalLimiter()
        )
        return cls(
            secrets=secrets,
            environ=os.environ,
            http=http,
            limiter=limiter,
            hasher=KeyHasher(pepper),
            key_store=RedisKeyStore(redis) if redis is not None else None,
        )

    async def aclose(self) -> None:
        if isinstance(self._limiter, SharedLimiter):
            await self._limiter.aclose()  # the Redis client the key store shares

    def compile(
        self,
        declaration: ModuleDeclaration,
        environment: str,
        peers: Mapping[str, ModuleDeclaration],
        config: Mapping[str, Any],
        secrets: SecretResolver | None = None,
    ) -> Gate | None:
        """The route's gate; None when it has nothing to check (open, no limits). `secrets`: the
        project's resolver for this environment (with its Vault), else fd2's own."""
        secrets = secrets or self._secrets
        context = placeholder_context(declaration, environment, secrets, self._environ)
        entry = declaration.entry
        auth = resolve_value(dict(entry.auth or {}), context, "auth")
        jwt_module = auth.get("jwt_module") or _jwt_dependency(entry, peers)
        mode = auth.get("mode") or ("jwt" if jwt_module else "none")
        if mode not in MODES:
            raise ConfigError(f"auth.mode must be one of {', '.join(MODES)}")
        verifier = keys = None
        identities: dict[bytes, Identity | None] = {}
        if mode in ("jwt", "either"):
            peer = peers.get(jwt_module) if isinstance(jwt_module, str) else None
            if peer is None or peer.module_type != JWT_MODULE_TYPE:
                raise ConfigError(
                    f"auth needs a {JWT_MODULE_TYPE} module; {jwt_module!r} is not one"
                )
            verifier = self._verifiers.build(peer, environment, secrets)
        if mode in ("api_key", "either"):
            keys, identities = self._keys(declaration, environment)
        policy = AuthPolicy(
            mode=mode,
            project=declaration.project,
            module=declaration.module,
            environment=environment,
            verifier=verifier,
            keys=keys,
            hasher=self._hasher,
            identities=identities,
            store=self._key_store,
            require_route_claims=bool(auth.get("require_route_claims", True)),
        )
        environment_entry = context.environment_entry(environment)
        env_limits = (
            environment_entry.get("limits") if isinstance(environment_entry, dict) else None
        )
        if env_limits is None:
            common = context.environment_entry("common")
            env_limits = common.get("limits") if isinstance(common, dict) else None
        plan = compile_plan(
            self._limiter,
            project=declaration.project,
            module=declaration.module,
            environment=environment,
            environment_limits=resolve_value(env_limits, context, "limits"),
            module_limits=resolve_value(entry.limits, context, "limits"),
        )
        if self._warming is None:
            # Token limits count prompts natively: build the encoder now, off the event loop,
            # rather than on the first limited request.
            self._warming = asyncio.get_running_loop().run_in_executor(None, warm_up)
        if mode == "none" and not plan.static_specs:
            return None
        model = config.get("model_name")
        bound = config.get("max_tokens")
        return Gate(
            policy=policy,
            limits=plan,
            default_model=model if isinstance(model, str) and model else None,
            completion_bound=bound
            if isinstance(bound, int) and bound > 0
            else DEFAULT_COMPLETION_BOUND,
        )

    def _keys(
        self, declaration: ModuleDeclaration, environment: str
    ) -> tuple[KeyTable, dict[bytes, Identity | None]]:
        records = decode_records(list(declaration.api_keys), "api_keys")
        keys = [ApiKey(record, declaration.project) for record in records if not record.disabled]
        identities: dict[bytes, Identity | None] = {}
        for key in keys:
            if key.allows_route(declaration.project, declaration.module, environment):
                credential = f"key:{key.id}"
                identities[key.digest] = Identity(
                    credential,
                    models=key.models,
                    limit_specs=credential_specs(key.project, credential, key.limits),
                )
            else:
                identities[key.digest] = None
        return KeyTable(keys), identities


def _jwt_dependency(entry: Any, peers: Mapping[str, ModuleDeclaration]) -> str | None:
    for name in getattr(entry, "dependencies", None) or ():
        peer = peers.get(name)
        if peer is not None and peer.module_type == JWT_MODULE_TYPE:
            return str(name)
    return None
