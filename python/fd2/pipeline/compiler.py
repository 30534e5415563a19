"""Compiles a route's steps from its manifests: the auth policy and the rate limits.

Runs when a route is compiled, never per request; the steps are put in front of the module's
handlers once it is set up (`RouteSteps.apply`, with the module's meters). A policy that cannot be
built (a missing JWT secret, a malformed key record) makes the route unavailable (503): it never
falls back to letting everyone in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp

from fd2.audit.sinks import FileSink, Sink, StreamSink
from fd2.audit.writer import AuditWriter
from fd2.auth.api_keys import ApiKey, KeyHasher, KeyTable, decode_records
from fd2.auth.choice import AuthChoice, choose_auth
from fd2.auth.gateway_route import consumer_verifier, gateway_route_of
from fd2.auth.identity import DEFAULT_RATE_LIMIT_WINDOW, Identity
from fd2.auth.jwt_settings import JwtVerifiers, placeholder_context, rate_limit_window
from fd2.auth.key_store import RedisKeyStore
from fd2.auth.policy import AuthPolicy
from fd2.auth.verifiers import AnyOfVerifiers, TokenVerifier
from fd2.config import Settings
from fd2.control.gateway import GatewayRoute
from fd2.control.manifests.compile import ModuleDeclaration
from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE
from fd2.control.manifests.placeholders import PlaceholderContext, resolve_value
from fd2.control.secrets import SecretResolver
from fd2.control.tasks import Supervisor
from fd2.limits.gcra import LocalLimiter
from fd2.limits.plan import Limiter, LimitPlan, compile_plan, credential_specs
from fd2.limits.route_limits import RouteLimits
from fd2.limits.shared import SharedLimiter
from fd2.limits.specs import LimitSpec
from fd2.pipeline.data_steps import (
    answers_generation,
    audit_factory,
    cache_factory,
    redaction_factory,
)
from fd2.pipeline.route_steps import RouteSteps
from fd2.response_cache.flight import Flights
from fd2.response_cache.store import CacheStore
from fd2.serving.errors import ConfigError

_log = logging.getLogger("fd2.auth")
_WINDOW_ORDER: Final = ("second", "minute", "hour")


class StepCompiler:
    """Compiles each route's steps; shared by every route of a worker: the limiter, the key
    hasher, the JWT verifiers."""

    def __init__(
        self,
        *,
        secrets: SecretResolver,
        environ: Mapping[str, str],
        http: aiohttp.ClientSession,
        limiter: Limiter,
        hasher: KeyHasher,
        key_store: RedisKeyStore | None = None,
        default_auth: str = "api_key",
        redis: Any = None,
        audit: AuditWriter | None = None,
    ) -> None:
        self._audit = audit
        self._cache_store = CacheStore(redis) if redis is not None else None
        self._flights = Flights()
        self._key_store = key_store
        self._default_auth = default_auth
        self._secrets = secrets
        self._environ = environ
        self._limiter = limiter
        # What `compile_plan` gives a route whose manifest names no limits (no buckets: nothing
        # in it is the route's), shared by every such route.
        self._no_limits = LimitPlan(limiter, ())
        # The last auth choice made without a gateway route: a module's routes are compiled one
        # environment after the other, and the choice depends only on the declaration, its
        # resolved auth block and the project (the declaration's peers).
        self._last_choice: (
            tuple[ModuleDeclaration, Mapping[str, ModuleDeclaration], Any, AuthChoice] | None
        ) = None
        self._hasher = hasher
        self._verifiers = JwtVerifiers(secrets=secrets, environ=environ, http=http)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        secrets: SecretResolver,
        http: aiohttp.ClientSession,
        redis: Any,
        tasks: Supervisor | None = None,
    ) -> StepCompiler:
        """The worker's compiler: Redis-shared limits and keys on `redis`, the worker's one Redis
        client (None without `redis_url`; the runtime owns and closes it)."""
        pepper = b""
        if settings.api_key_pepper_ref:
            pepper = secrets.resolve(settings.api_key_pepper_ref).reveal().encode()
        if settings.default_auth == "none":
            _log.warning(
                "--default-auth none: modules whose manifests name no auth are served without "
                "authentication"
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
            default_auth=settings.default_auth,
            redis=redis,
            audit=_audit_writer(settings, redis, tasks),
        )

    def compile(
        self,
        declaration: ModuleDeclaration,
        environment: str,
        peers: Mapping[str, ModuleDeclaration],
        config: Mapping[str, Any],
        secrets: SecretResolver | None = None,
        context: PlaceholderContext | None = None,
    ) -> RouteSteps:
        """The route's steps (none for an open route without limits). `secrets`: the project's
        resolver for this environment (with its Vault), else fd2's own. `context`: the one the
        route's config was resolved against (`ResolvedModule.placeholders`: the same
        environments and environment, its secrets through the same resolver), else one is made
        with `secrets`."""
        secrets = secrets or self._secrets
        if context is None:
            context = placeholder_context(declaration, environment, secrets, self._environ)
        entry = declaration.entry
        auth = entry.auth or _NO_AUTH
        last = self._last_choice
        # The same module's block, found plain for its last environment, is plain still.
        known_plain = last is not None and last[2] is auth and last[0] is declaration
        if not known_plain and not _plain(auth):
            auth = resolve_value(auth, context, "auth")  # a new dict: the manifest's unchanged
        gateway = gateway_route_of(config, peers, environment, secrets, self._environ)
        if (
            gateway is None
            and last is not None
            and last[0] is declaration
            and last[1] is peers
            and last[2] == auth
        ):
            choice = last[3]  # the same module in its next environment, with the same auth
        else:
            choice = choose_auth(declaration, auth, peers, self._default_auth, gateway)
            if gateway is None:
                self._last_choice = (declaration, peers, auth, choice)
        mode = choice.mode
        verifier: TokenVerifier | None = None
        keys = None
        identities: dict[bytes, Identity | None] = {}
        window = DEFAULT_RATE_LIMIT_WINDOW
        if choice.gateway and gateway is not None and gateway.jwt_auth is not None:
            verifier = consumer_verifier(gateway.jwt_auth)
            if verifier is None:
                raise ConfigError(f"APISIX route {gateway.name!r}: jwt-auth consumer has no key")
        elif mode in ("jwt", "either"):
            verifier, window = self._verifier(choice, peers, declaration, environment, secrets)
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
            source=choice.reason,
            rate_limit_window=window,
        )
        environment_entry = context.environment_entry(environment)
        env_limits = (
            environment_entry.get("limits") if isinstance(environment_entry, dict) else None
        )
        if env_limits is None:
            common = context.environment_entry("common")
            env_limits = common.get("limits") if isinstance(common, dict) else None
        if env_limits is None and entry.limits is None and (gateway is None or not gateway.limits):
            plan = self._no_limits  # nothing route-specific to compile: one plan for them all
        else:
            plan = compile_plan(
                self._limiter,
                project=declaration.project,
                module=declaration.module,
                environment=environment,
                environment_limits=resolve_value(env_limits, context, "limits"),
                module_limits=resolve_value(entry.limits, context, "limits"),
                gateway=_gateway_limits(declaration, environment, gateway),
            )
        redaction = (
            resolve_value(entry.redaction, context, "redaction")
            if entry.redaction is not None
            else None
        )
        cache = resolve_value(entry.cache, context, "cache") if entry.cache is not None else None
        if redaction is None and cache is None and entry.audit is None:
            return RouteSteps(policy, plan)  # what the factories give for no blocks: no steps
        return RouteSteps(
            policy,
            plan,
            cache=cache_factory(
                cache,
                self._cache_store,
                self._flights,
                declaration.project,
                declaration.module,
                environment,
                # A config or redaction change makes a new generation of entries: an answer
                # stored under the old ones (another prompt, a value then only masked) is
                # never served again. Only a cache that can store reads it (a digest of the
                # whole config: ~4% of a full build when computed for every route).
                answers_generation(config, redaction)
                if cache is not None and self._cache_store is not None
                else "",
            ),
            redaction=redaction_factory(redaction),
            audit=audit_factory(resolve_value(entry.audit, context, "audit"), self._audit),
        )

    def _verifier(
        self,
        choice: AuthChoice,
        peers: Mapping[str, ModuleDeclaration],
        declaration: ModuleDeclaration,
        environment: str,
        secrets: SecretResolver,
    ) -> tuple[TokenVerifier, str]:
        """The verifier of the chosen jwt_config module(s). A module the manifest names must
        work; of modules inferred from the project, the unusable ones are skipped (fewer
        accepted tokens, never more) as long as one works."""
        verifiers: list[TokenVerifier] = []
        windows: list[str] = []
        problems: list[str] = []
        for name in choice.jwt_modules:
            peer = peers.get(name)
            try:
                if peer is None or peer.module_type != JWT_CONFIG_MODULE_TYPE:
                    raise ConfigError(
                        f"auth needs a {JWT_CONFIG_MODULE_TYPE} module; {name!r} is not one"
                    )
                verifiers.append(self._verifiers.build(peer, environment, secrets))
                windows.append(rate_limit_window(peer, environment, self._environ))
            except ConfigError as exc:
                if choice.named:
                    raise
                problems.append(exc.message)
        if not verifiers:
            raise ConfigError("no usable jwt_config module: " + "; ".join(problems))
        for problem in problems:
            _log.warning(
                "%s/%s [%s]: skipped a jwt_config module: %s",
                declaration.project,
                declaration.module,
                environment,
                problem,
            )
        verifier = verifiers[0] if len(verifiers) == 1 else AnyOfVerifiers(tuple(verifiers))
        # Several modules may read `rate_limit` over different windows: the longest is the
        # strictest reading of the same number.
        return verifier, max(windows, key=_WINDOW_ORDER.index)

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


_NO_AUTH: Final[Mapping[str, Any]] = {}


def _plain(block: Mapping[str, Any]) -> bool:
    """Whether a block holds no placeholder at all (keys and values; nothing nested): then
    resolving it would give an equal copy, and the block is read as written (nothing here
    writes to it). Most routes' `auth` is `{"mode": ...}`."""
    for key, value in block.items():
        if type(value) is str:
            if "${" in value:
                return False
        elif isinstance(value, dict | list):
            return False
        if "${" in key:
            return False
    return True


def _audit_writer(settings: Settings, redis: Any, tasks: Supervisor | None) -> AuditWriter | None:
    """The worker's audit writer, drained by a supervised task (None: no sink configured)."""
    sinks: list[Sink] = []
    if settings.audit_file:
        sinks.append(
            FileSink(
                Path(settings.audit_file),
                max_bytes=settings.audit_file_max_bytes,
                keep=settings.audit_file_keep,
            )
        )
    if settings.audit_stream:
        if redis is None:
            raise ConfigError("--audit-stream needs --redis-url")
        sinks.append(StreamSink(redis, settings.audit_stream, maxlen=settings.audit_stream_maxlen))
    if not sinks or tasks is None:
        return None
    writer = AuditWriter(sinks)
    tasks.spawn("audit writer", writer.run)
    return writer


def _gateway_limits(
    declaration: ModuleDeclaration, environment: str, gateway: GatewayRoute | None
) -> tuple[tuple[LimitSpec, ...], tuple[LimitSpec, ...], tuple[LimitSpec, ...]]:
    if gateway is None or not gateway.limits:
        return (), (), ()
    prefix = f"route:{declaration.project}:{declaration.module}:{environment}"
    limits = RouteLimits(prefix, gateway.limits)
    return limits.route_wide, limits.per_client, limits.per_caller
