"""The `rag_service` module's config: the Control Tower's `RAGServiceModule`, typed and checked.

Field names and defaults are the Control Tower's (its app.py). It owns the format and may add
fields, so unknown keys are ignored; values reached through placeholders may arrive as strings
("10"), hence the lax conversion of numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from fd2.serving.errors import ConfigError

EXPANSION_STRATEGIES = ("fusion", "multi_query")


class RagServiceConfig(msgspec.Struct, frozen=True, kw_only=True):
    service_url: str
    configuration_name: str
    query_endpoint: str = "/query"
    retrieve_endpoint: str = "/retrieve"
    default_k: Annotated[int, msgspec.Meta(ge=1)] = 5
    default_similarity_threshold: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    use_reranking: bool = False
    filter_after_reranking: bool = True
    query_expansion_enabled: bool = False
    query_expansion_strategy: str | None = None
    query_expansion_llm_config: str | None = None
    query_expansion_num_queries: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    jwt_auth_enabled: bool = False
    jwt_module_reference: str | None = None
    request_timeout: Annotated[float, msgspec.Meta(gt=0)] = 60
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    default_metadata_filter: dict[str, Any] | None = None


def load_config(raw: Mapping[str, Any]) -> RagServiceConfig:
    """Decode a module config; ConfigError names the offending field."""
    try:
        config = msgspec.convert(dict(raw), RagServiceConfig, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec's messages name the field and the expected type, never a string's value.
        raise ConfigError(f"rag_service config is invalid: {exc}") from None
    if not config.service_url.startswith(("http://", "https://")):
        raise ConfigError("rag_service config: service_url must be an http(s) URL")
    for field in ("query_endpoint", "retrieve_endpoint"):
        if not getattr(config, field).startswith("/"):
            raise ConfigError(f"rag_service config: {field} must be a path starting with '/'")
    if config.query_expansion_enabled:
        if not config.query_expansion_llm_config:
            # The devkit needs the LLM config of the expansion; without it every call would fail.
            raise ConfigError(
                "rag_service config: query_expansion_enabled needs query_expansion_llm_config"
            )
        strategy = config.query_expansion_strategy
        if strategy is not None and strategy not in EXPANSION_STRATEGIES:
            raise ConfigError(
                "rag_service config: query_expansion_strategy must be one of "
                + ", ".join(EXPANSION_STRATEGIES)
            )
    return config
