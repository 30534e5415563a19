"""The route's data steps, compiled from the module's `cache`, `redaction` and `audit` blocks
(module entry or `metadata.fd2.modules.<name>`): each gives a factory `RouteSteps` calls per
endpoint with its meter and the module's class, or None when the module has no such block."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import msgspec
import orjson

from fd2.audit.record import AuditSettings
from fd2.audit.writer import AuditWriter
from fd2.metering import Meter
from fd2.module import Module
from fd2.pipeline.audit import Audit
from fd2.pipeline.cache import ResponseCache
from fd2.pipeline.redaction import Redaction
from fd2.pipeline.route_steps import StepFactory
from fd2.pipeline.step import Step
from fd2.privacy.policy import redaction_settings
from fd2.privacy.redactor import Redactor
from fd2.response_cache.flight import Flights
from fd2.response_cache.settings import cache_settings
from fd2.response_cache.store import CacheStore
from fd2.serving.errors import ConfigError
from fd2.telemetry.log_throttle import ThrottledLog

_log = ThrottledLog(logging.getLogger("fd2.cache"))


def cache_factory(
    raw: Any,
    store: CacheStore | None,
    flights: Flights,
    project: str,
    module: str,
    environment: str,
    generation: str = "",
) -> StepFactory | None:
    """`generation`: a digest of what shapes the module's answers (its resolved config, its
    redaction policy); entries of an earlier generation are never served after a change."""
    settings = cache_settings(raw)
    if settings is None:
        return None
    if store is None:
        # A cache is an optimisation: without Redis the module is served, uncached.
        _log.warning(
            f"cache-no-redis:{project}/{module}",
            "%s/%s: the module has a cache block but fd2 has no --redis-url; not cached",
            project,
            module,
        )
        return None

    def build(meter: Meter | None, kind: type[Module] | None) -> Step:
        ignores = kind.cache_key_ignores if kind is not None else frozenset()
        # Without a declaration every ignored field may change the answer's shape: all of them
        # then pick the stored variant (fewer hits, never a wrong answer shape).
        variant: frozenset[str] = getattr(kind, "cache_variant_fields", ignores)
        return ResponseCache(
            settings=settings,
            store=store,
            flights=flights,
            project=project,
            module=module,
            environment=environment,
            ignores=ignores,
            variant_fields=variant,
            meter=meter,
            generation=generation,
        )

    return build


def answers_generation(config: Any, redaction: Any) -> str:
    """A short digest of a route's resolved config and redaction policy. Secrets enter as their
    reference (`Secret`'s repr), never their value."""
    canonical = orjson.dumps([config, redaction], option=orjson.OPT_SORT_KEYS, default=repr)
    return hashlib.sha256(canonical).hexdigest()[:12]


def redaction_factory(raw: Any) -> StepFactory | None:
    settings = redaction_settings(raw)
    if settings is None:
        return None
    key = settings.hash_key.encode() if settings.hash_key else None
    redactor = Redactor(settings.actions(), key)
    step = Redaction(redactor, request="request" in settings.on, response="response" in settings.on)
    return lambda meter, kind: step


def audit_factory(raw: Any, writer: AuditWriter | None) -> StepFactory | None:
    if raw is None:
        return None
    try:
        settings = msgspec.convert(raw, AuditSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"audit: {exc}") from None
    if not settings.enabled:
        return None
    if writer is None:
        # A module that must be audited is not served unaudited (docs/privacy.md).
        raise ConfigError(
            "the module asks for an audit trail but fd2 has no audit sink "
            "(--audit-file and/or --audit-stream)"
        )
    return lambda meter, kind: Audit(settings, writer, meter)
