"""The `deployments` and `routing` blocks of an inference module's config, typed and checked.

Both sit in the module's `config` (through `metadata.fd2.modules.<name>.config` to survive the
Control Tower, which drops fields it does not declare). Credentials are references only: a target's
`api_key` must arrive as a `Secret` (a placeholder reaching `environments.*.secrets`, or a
configuration reference named by `api_key_ref`); a literal string is refused, so a key can never
sit in a manifest in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2_inference.providers.registry import PROVIDERS

Strategy = Literal["round_robin", "least_in_flight", "lowest_latency", "usage", "priority"]
Cause = Literal["connect", "timeout", "5xx", "429", "context_length", "content_filter"]
ALL_CAUSES: tuple[Cause, ...] = (
    "connect",
    "timeout",
    "5xx",
    "429",
    "context_length",
    "content_filter",
)

_Positive = Annotated[float, msgspec.Meta(gt=0)]


class TargetTimeouts(msgspec.Struct, frozen=True, kw_only=True):
    connect_s: _Positive | None = None
    read_s: _Positive | None = None
    """Also the wait for the answer's status line (time to first byte)."""
    total_s: _Positive | None = None


class TargetSpec(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str
    """The OpenAI-compatible base (`http://host:port/v1`)."""
    model: str | None = None
    """The model name sent upstream (None: the alias itself)."""
    name: str | None = None
    provider: str = "openai"
    """`openai` (relayed byte for byte) or a provider of `fd2_inference.providers.registry`
    (its calls built and its answers translated by the provider seam; chat completions only)."""
    api_version: str | None = None
    deployment: str | None = None
    region: str | None = None
    provider_options: dict[str, Any] = {}
    api_key: Any = None
    """A `Secret` once resolved; see the module docstring."""
    api_key_ref: str | None = None
    weight: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    priority: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Lower first (strategy `priority`)."""
    rpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    tpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_in_flight: Annotated[int, msgspec.Meta(ge=1)] | None = None
    timeouts: TargetTimeouts = TargetTimeouts()


class HedgeSpec(msgspec.Struct, frozen=True, kw_only=True):
    delay_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    """Fixed delay; None: the first target's observed p95 time to first byte."""
    min_delay_ms: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    max_hedges: Annotated[int, msgspec.Meta(ge=1, le=3)] = 1


class AliasSpec(msgspec.Struct, frozen=True, kw_only=True):
    targets: list[TargetSpec]
    strategy: Strategy = "round_robin"
    fallbacks: list[str] = []
    """Other aliases tried, in order, once this one's targets have failed."""
    context_fallback: str | None = None
    """The alias (a larger context) a context-length error moves to."""
    content_filter_fallback: str | None = None
    retry_on: list[Cause] = msgspec.field(default_factory=lambda: list(ALL_CAUSES))
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    hedge: HedgeSpec | None = None


class BreakerSpec(msgspec.Struct, frozen=True, kw_only=True):
    consecutive_failures: Annotated[int, msgspec.Meta(ge=1)] = 5
    error_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    window_s: _Positive = 10.0
    min_requests: Annotated[int, msgspec.Meta(ge=1)] = 20
    open_s: _Positive = 5.0
    half_open_probes: Annotated[int, msgspec.Meta(ge=1)] = 1


class BudgetSpec(msgspec.Struct, frozen=True, kw_only=True):
    ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.2
    """Extra attempts (retries, fallbacks, hedges) per client request, at most."""
    min_tokens: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    """What a quiet module may retry before it has earned any (and the balance it starts with)."""
    max_tokens: Annotated[float, msgspec.Meta(ge=1)] = 100.0


class RoutingSpec(msgspec.Struct, frozen=True, kw_only=True):
    retry_budget: BudgetSpec = BudgetSpec()
    breaker: BreakerSpec = BreakerSpec()


class DeploymentsSpec(msgspec.Struct, frozen=True, kw_only=True):
    deployments: dict[str, AliasSpec]
    routing: RoutingSpec = RoutingSpec()


def has_deployments(config: Mapping[str, Any]) -> bool:
    return bool(config.get("deployments"))


def load_deployments(
    config: Mapping[str, Any], references: Mapping[str, Secret | None]
) -> tuple[DeploymentsSpec, dict[tuple[str, int], Secret | None]]:
    """The checked spec and each target's credential by (alias, index)."""
    raw = {"deployments": config.get("deployments"), "routing": config.get("routing") or {}}
    try:
        spec = msgspec.convert(raw, DeploymentsSpec, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"inference module deployments are invalid: {exc}") from None
    keys: dict[tuple[str, int], Secret | None] = {}
    for alias, entry in spec.deployments.items():
        if not entry.targets:
            raise ConfigError(f"deployment {alias!r} has no targets")
        for name in (*entry.fallbacks, entry.context_fallback, entry.content_filter_fallback):
            if name is not None and name not in spec.deployments:
                raise ConfigError(f"deployment {alias!r} falls back to unknown alias {name!r}")
        for index, target in enumerate(entry.targets):
            where = f"deployment {alias!r} target {index}"
            if target.provider.strip().lower() not in PROVIDERS:
                raise ConfigError(
                    f"{where}: unknown provider {target.provider!r} "
                    f"(known: {', '.join(sorted(PROVIDERS))})"
                )
            if not target.base_url.startswith(("http://", "https://")):
                raise ConfigError(f"{where}: base_url must be an http(s) URL")
            keys[alias, index] = _credential(target, references, where)
    return spec, keys


def _credential(
    target: TargetSpec, references: Mapping[str, Secret | None], where: str
) -> Secret | None:
    if target.api_key_ref is not None:
        if target.api_key_ref not in references:
            raise ConfigError(f"{where}: api_key_ref names no configuration reference")
        return references[target.api_key_ref]
    value = target.api_key
    if value is None or isinstance(value, Secret):
        return value
    # Never echo the value: it may be a key written in clear.
    raise ConfigError(
        f"{where}: api_key must be a secret reference reached through a placeholder "
        "(${environments.${environment}.secrets.<name>}) or api_key_ref, not a literal"
    )
