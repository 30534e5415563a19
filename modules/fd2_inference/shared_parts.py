"""Set-up parts that inference modules with the same settings share, built once per distinct
settings instead of once per route.

A 10k-route table repeats a few upstreams: every module of a project, in one environment, often
names the same URL and key, and every project the same model. The upstream client, the OpenAI
provider and the chat service over them hold no state of their
own once built (nothing in them is written after `__init__`), so routes whose inputs are equal
can use the same objects; what is the route's own (its project and module, its Responses store)
is still built per route. The caches are bounded, and keyed by identity where an input is a live
object (the worker's HTTP session and pool), so two builders never share an upstream.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from functools import lru_cache
from typing import Final, cast

import aiohttp

from fd2.http_client import ConnectionPool
from fd2.module import Timeouts
from fd2_inference.chat_service import ProviderChat
from fd2_inference.config import InferenceConfig
from fd2_inference.providers.base import ParamPolicy, Provider, ProviderSettings
from fd2_inference.providers.registry import DEFAULT_PROVIDER, build_provider
from fd2_inference.transforms import Defaults, UpstreamTarget, upstream_target
from fd2_inference.upstream import Upstream

_SIZE: Final = 4096
"""Distinct settings kept; a build with more than this only builds the rest per route."""


@lru_cache(maxsize=_SIZE)
def target(primary: str | None, endpoint_url: str | None) -> UpstreamTarget:
    """`upstream_target`, checked and parsed once per distinct URL (a ConfigError is raised
    every time, never kept)."""
    return upstream_target(primary, endpoint_url)


@lru_cache(maxsize=_SIZE)
def upstream(
    session: aiohttp.ClientSession,
    pool: ConnectionPool | None,
    base_url: str,
    api_key: str | None,
    timeouts: Timeouts,
    fallback_url: str | None,
) -> Upstream:
    """An OpenAI-compatible upstream (relayed byte for byte)."""
    return Upstream(session, base_url, api_key, timeouts, fallback_url, pool=pool)


def openai_provider(
    config: InferenceConfig, base_url: str, api_key: str | None, chat_path: str
) -> Provider | None:
    """The OpenAI provider of an OpenAI-compatible module, shared; None when the config has
    provider options or credentials of its own (then the module builds its own)."""
    if (
        config.provider_options
        or config.aws_access_key_id is not None
        or config.aws_secret_access_key is not None
        or config.aws_session_token is not None
    ):
        return None
    return _openai_provider(
        base_url,
        api_key,
        chat_path,
        config.api_version,
        config.deployment,
        config.region,
        config.unsupported_params,
        config.model_name,
    )


@lru_cache(maxsize=_SIZE)
def _openai_provider(
    base_url: str,
    api_key: str | None,
    chat_path: str,
    api_version: str | None,
    deployment: str | None,
    region: str | None,
    unsupported_params: ParamPolicy,
    model_name: str | None,
) -> Provider:
    # As `config.provider_settings` makes them for a config without options or credentials.
    return build_provider(
        ProviderSettings(
            name=DEFAULT_PROVIDER,
            base_url=base_url,
            api_key=api_key,
            api_version=api_version or None,
            deployment=deployment or None,
            region=region or None,
            unsupported_params=unsupported_params,
            model=model_name or None,
            options={"chat_path": chat_path},
        )
    )


def chat(
    provider: Provider, upstream: Upstream, defaults: Defaults, logger: logging.Logger
) -> ProviderChat:
    """The chat service over a provider and upstream, shared when the provider is compared by
    identity (one equal by value is not kept: it could stand for another's settings)."""
    if type(provider).__hash__ is not object.__hash__:
        return ProviderChat(provider, upstream, defaults, logger)
    return _chat(cast(Hashable, provider), upstream, defaults, logger)


@lru_cache(maxsize=_SIZE)
def _chat(
    provider: Hashable, upstream: Upstream, defaults: Defaults, logger: logging.Logger
) -> ProviderChat:
    return ProviderChat(cast(Provider, provider), upstream, defaults, logger)
