"""The `model_server` module's config: the Control Tower's `ModelServerModule`, typed and checked.

Field names and defaults are the Control Tower's (its app.py). It owns the format and may add
fields, so unknown keys are ignored; values reached through placeholders may arrive as strings
("32"), hence the lax conversion of numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError

_PATH_FIELDS = ("embeddings_endpoint", "rerank_endpoint", "classify_endpoint", "health_endpoint")


class ModelServerConfig(msgspec.Struct, frozen=True, kw_only=True):
    service_url: str
    embeddings_endpoint: str = "/embeddings"
    rerank_endpoint: str = "/rerank"
    classify_endpoint: str = "/classify"
    health_endpoint: str = "/health"
    default_embedding_model: str | None = None
    default_reranker_model: str | None = None
    default_classifier_model: str | None = None
    available_embedding_models: list[str] = msgspec.field(default_factory=list)
    available_reranker_models: list[str] = msgspec.field(default_factory=list)
    available_classifier_models: list[str] = msgspec.field(default_factory=list)
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 32
    request_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 2
    api_key_enabled: bool = False
    api_key: Secret | None = None
    """The model server's own key (a secret field, resolved by the core), sent upstream when
    `api_key_enabled`. Optional: `api_key_enabled` is first the Control Tower's `key-auth` on the
    route (callers present a project API key), and the devkit's model server itself checks no
    credential, so a manifest that asks for callers' keys and gives no server key is served."""
    jwt_auth_enabled: bool = False
    jwt_module_reference: str | None = None


def load_config(raw: Mapping[str, Any]) -> ModelServerConfig:
    """Decode a module config; ConfigError names the offending field."""
    try:
        config = msgspec.convert(dict(raw), ModelServerConfig, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec's messages name the field and the expected type, never a string's value.
        raise ConfigError(f"model_server config is invalid: {exc}") from None
    if not config.service_url.startswith(("http://", "https://")):
        raise ConfigError("model_server config: service_url must be an http(s) URL")
    for field in _PATH_FIELDS:
        if not getattr(config, field).startswith("/"):
            raise ConfigError(f"model_server config: {field} must be a path starting with '/'")
    return config
