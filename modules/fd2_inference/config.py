"""The inference module's config (an `inference_endpoint` entry of a manifest), typed and checked.

The Control Tower owns this format and may add fields, so unknown keys are ignored. Values reached
through placeholders can arrive as strings ("1024"), hence the lax conversion of numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2_inference.providers.base import ProviderSettings


class InferenceConfig(msgspec.Struct, frozen=True, kw_only=True):
    model_name: str | None = None
    model_version: str | None = None
    endpoint_url: str | None = None
    """The inference endpoint itself. When it ends with an OpenAI path (.../v1/chat/completions)
    the other endpoints derive from the same base; any other path is the chat endpoint only."""
    apisix_route: str | None = None
    """The name of a route of the `apisix_gateway_module`: fd2 applies that route itself."""
    apisix_gateway_module: str | None = None
    system_prompt: str | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    batch_size: Annotated[int, msgspec.Meta(ge=1)] | None = None
    api_key: Secret | None = None
    """Resolved by the core (a secret field); never a plain string."""
    # `timeouts` in the config is read by the core, which merges it into the context's Timeouts.
    provider: str | None = None
    """The upstream's API (`fd2_inference.providers.registry`); None: OpenAI-compatible, relayed
    byte for byte. Set it in `metadata.fd2.modules.<name>.config` to survive the Control Tower."""
    api_version: str | None = None
    deployment: str | None = None
    region: str | None = None
    unsupported_params: Literal["refuse", "drop"] = "refuse"
    """A request parameter the provider cannot honour: a 400 naming it, or dropped (logged)."""
    provider_options: dict[str, Any] = {}
    aws_access_key_id: Secret | None = None
    aws_secret_access_key: Secret | None = None
    aws_session_token: Secret | None = None


def load_config(raw: Mapping[str, Any]) -> InferenceConfig:
    """Decode a module config; ConfigError names the offending field."""
    try:
        # A dict is converted as it is (msgspec only reads it); another mapping is copied first.
        config = msgspec.convert(
            raw if type(raw) is dict else dict(raw), InferenceConfig, strict=False
        )
    except msgspec.ValidationError as exc:
        # msgspec's messages name the field and the expected type, never a string's value.
        raise ConfigError(f"inference module config is invalid: {exc}") from None
    if config.provider is not None and not config.provider.strip():
        raise ConfigError("inference module config has an empty provider")
    if bool(config.apisix_route) != bool(config.apisix_gateway_module):
        raise ConfigError(
            "inference module config names "
            + (
                "apisix_route without apisix_gateway_module"
                if config.apisix_route
                else "apisix_gateway_module without apisix_route"
            )
            + ": a gateway route needs both"
        )
    return config


def provider_settings(
    config: InferenceConfig,
    name: str,
    base_url: str,
    api_key: Secret | None,
    *,
    options: Mapping[str, Any] | None = None,
) -> ProviderSettings:
    """What the provider `name` is built from: the config's provider settings, revealed."""
    credentials = {
        field: secret.reveal()
        for field, secret in (
            ("aws_access_key_id", config.aws_access_key_id),
            ("aws_secret_access_key", config.aws_secret_access_key),
            ("aws_session_token", config.aws_session_token),
        )
        if secret is not None
    }
    return ProviderSettings(
        name=name,
        base_url=base_url,
        api_key=api_key.reveal() if api_key is not None else None,
        api_version=config.api_version or None,
        deployment=config.deployment or None,
        region=config.region or None,
        unsupported_params=config.unsupported_params,
        model=config.model_name or None,
        options=config.provider_options if options is None else options,
        credentials=credentials,
    )
