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
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Any, Final, cast

import aiohttp
import msgspec

from fd2.http_client import ConnectionPool
from fd2.module import Timeouts
from fd2_inference.chat_service import ProviderChat
from fd2_inference.config import InferenceConfig
from fd2_inference.metering import CHAT, COMPLETIONS, EMBEDDINGS, OpenAIMeter
from fd2_inference.providers.base import Provider, ProviderSettings
from fd2_inference.providers.registry import DEFAULT_PROVIDER, build_provider
from fd2_inference.transforms import (
    Defaults,
    Prepared,
    UpstreamTarget,
    prepare_chat,
    prepare_completion,
    prepare_embedding,
    upstream_target,
)
from fd2_inference.upstream import Upstream

Prepare = Callable[[dict[str, Any], Defaults], Prepared]
PREPARE: Final[dict[str, Prepare]] = {
    CHAT: prepare_chat,
    COMPLETIONS: prepare_completion,
    EMBEDDINGS: prepare_embedding,
}
"""How each of the module's own endpoints reads a request body."""
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


class OpenAICompatible(msgspec.Struct, frozen=True):
    """What an OpenAI-compatible module (no `provider`) shares with the modules of the same
    settings; `provider` and `chat` None when its own provider must be built
    (`provider_shareable`)."""

    target: UpstreamTarget
    fallback_url: str | None
    upstream: Upstream
    chat_path: str
    meters: dict[str, OpenAIMeter]
    provider: Provider | None
    chat: ProviderChat | None


@lru_cache(maxsize=_SIZE)
def openai_compatible(
    session: aiohttp.ClientSession,
    pool: ConnectionPool | None,
    primary: str | None,
    endpoint_url: str | None,
    fallback: str | None,
    api_key: str | None,
    timeouts: Timeouts,
    defaults: Defaults,
    max_tokens: int | None,
    logger: logging.Logger,
    provider_shared: bool,
) -> OpenAICompatible:
    """The parts below, found in one look-up instead of one each (a ConfigError, such as a bad
    URL, is raised every time, never kept)."""
    found = target(primary, endpoint_url)
    fallback_url = target(fallback, None).url if fallback else None
    relay = upstream(session, pool, found.url, api_key, timeouts, fallback_url)
    chat_path = "" if found.chat_only else "/chat/completions"
    provider = _openai_provider(api_key, chat_path) if provider_shared else None
    return OpenAICompatible(
        target=found,
        fallback_url=fallback_url,
        upstream=relay,
        chat_path=chat_path,
        meters=meters(defaults, max_tokens),
        provider=provider,
        # (made here: a chat service is shared through this look-up; another by its own key
        # would only miss when this one has)
        chat=ProviderChat(provider, relay, defaults, logger) if provider is not None else None,
    )


def provider_shareable(config: InferenceConfig) -> bool:
    """Whether an OpenAI-compatible module's provider may be the shared one: not when its config
    has provider options or credentials of its own (then the module builds its own)."""
    return not (
        config.provider_options
        or config.aws_access_key_id is not None
        or config.aws_secret_access_key is not None
        or config.aws_session_token is not None
    )


def openai_provider(
    config: InferenceConfig, base_url: str, api_key: str | None, chat_path: str
) -> Provider | None:
    """The OpenAI provider of an OpenAI-compatible module, shared; None when the config has
    provider options or credentials of its own (then the module builds its own)."""
    if not provider_shareable(config):
        return None
    return _openai_provider(api_key, chat_path)


@lru_cache(maxsize=_SIZE)
def meters(defaults: Defaults, max_tokens: int | None) -> dict[str, OpenAIMeter]:
    """The meters of a module's own endpoints, once per distinct defaults: they keep nothing per
    route (read only once built)."""
    return {
        kind: OpenAIMeter(kind, _bound(prepare, defaults), max_tokens)
        for kind, prepare in PREPARE.items()
    }


def _bound(prepare: Prepare, defaults: Defaults) -> Callable[[dict[str, Any]], Prepared]:
    return lambda body: prepare(body, defaults)


OPENAI_PROVIDER_READS: Final = frozenset({"api_key", "options.chat_path"})
"""The settings `OpenAIProvider` is built from (its headers and chat path): routes that agree on
these share one provider whatever their URL, model or other settings, which it never reads
(tests/modules/fd2_inference/test_shared_parts.py builds it both ways and compares). If it ever
reads another setting, that setting joins the key below."""


@lru_cache(maxsize=_SIZE)
def _openai_provider(api_key: str | None, chat_path: str) -> Provider:
    return build_provider(
        ProviderSettings(
            name=DEFAULT_PROVIDER, base_url="", api_key=api_key, options={"chat_path": chat_path}
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
