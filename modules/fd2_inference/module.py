"""InferenceModule: an OpenAI-compatible upstream behind fd2, with the manifest's defaults.

Serves /v1/chat/completions, /v1/completions, /v1/embeddings (POST) and /v1/models (GET), so the
official OpenAI SDKs work against `http://<fd2>/<project>/<module>/v1` unchanged. A module whose
`endpoint_url` names one inference endpoint (not an OpenAI path), or that is served through an
APISIX route (`apisix_route` + `apisix_gateway_module`), serves chat completions only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

from fd2.control.secrets import Secret
from fd2.metering import Meter
from fd2.module import ErrorRenderer, Handler, Module, ModuleContext
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import ConfigError, NotFound
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.request_metrics import upstream_failed
from fd2.types import Send
from fd2_inference import shared_parts
from fd2_inference.answers import unsupported
from fd2_inference.chat_service import ProviderChat, provider_call, upstream_call
from fd2_inference.config import InferenceConfig, load_config, provider_settings
from fd2_inference.deployments.config import has_deployments  # routing (issue 13)
from fd2_inference.deployments.service import DeployedEndpoints  # routing (issue 13)
from fd2_inference.embeddings import as_requested, checked, input_count
from fd2_inference.exchange import relay_json
from fd2_inference.extra_endpoints import EXTRA_ENDPOINTS
from fd2_inference.extras import ExtraEndpoint, ModuleParts
from fd2_inference.fan_out import fans_out, relay_fanned_out
from fd2_inference.metering import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    OpenAIMeter,
    UsageReport,
    stream_report,
    wants_usage,
    warm_up,
)
from fd2_inference.providers.base import Provider, UnsupportedParameter
from fd2_inference.providers.registry import DEFAULT_PROVIDER, build_provider
from fd2_inference.route_chat import RouteChat, gateway_route
from fd2_inference.route_upstream import RouteUpstream
from fd2_inference.streaming import relay_stream
from fd2_inference.transforms import (
    Defaults,
    defaults_from,
    display_url,
    prepare_chat,
    prepare_embedding,
    provider_base_url,
    upstream_body,
)
from fd2_inference.translated import relay_translated_json, relay_translated_stream
from fd2_inference.upstream import Upstream

_PREPARE = shared_parts.PREPARE
_meters = shared_parts.meters
_PATHS = {
    CHAT: "/v1/chat/completions",
    COMPLETIONS: "/v1/completions",
    EMBEDDINGS: "/v1/embeddings",
}
_OTHER_ENDPOINTS = (("/v1/completions", "POST"), ("/v1/embeddings", "POST"), ("/v1/models", "GET"))


class InferenceModule(Module):
    """Proxies OpenAI's inference API to one upstream, applying manifest defaults."""

    module_types: ClassVar[tuple[str, ...]] = ("inference_endpoint", "inference_openai")
    secret_fields: ClassVar[frozenset[str]] = frozenset(
        # The AWS ones: Bedrock's SigV4 credentials (the config declares them as secrets).
        {"api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
    )
    cache_key_ignores: ClassVar[frozenset[str]] = frozenset({"user", "stream", "stream_options"})
    # Of those, the ones that change the answer's shape (a stream, its usage chunk): the response
    # cache keeps one stored variant per value (fd2.pipeline.cache).
    cache_variant_fields: ClassVar[frozenset[str]] = frozenset({"stream", "stream_options"})

    _upstream: Upstream
    _defaults: Defaults
    _logger: logging.Logger
    _chat_path: str
    _only_chat: str | None
    """Why only chat completions are served (None: every endpoint is)."""
    _route: RouteChat | None
    _gateway_module: str
    _meters: dict[str, OpenAIMeter]
    _provider: Provider
    chat_service: ProviderChat | None
    """The module's chat path in process (`providers.base.ChatService`) for its other endpoints
    (Anthropic's /v1/messages); None for a module served through an APISIX route."""
    _extras: tuple[ExtraEndpoint, ...]
    _deployed: DeployedEndpoints | None = None
    """routing (issue 13): set when the config declares `deployments` (model aliases)."""
    _model_name: str | None = None

    async def setup(self, context: ModuleContext) -> None:
        config = load_config(context.config)
        self._defaults = defaults_from(config)
        self._logger = context.logger
        self._route = None
        self.chat_service = None
        self._extras = ()
        warm_up()
        self._model_name = config.model_name or None
        if has_deployments(context.config):  # routing (issue 13): aliases over targets
            self._deployed = DeployedEndpoints(context, self._defaults, config.max_tokens)
            return
        api_key = config.api_key or context.references.get("api_key")
        name = (config.provider or DEFAULT_PROVIDER).strip().lower()
        if config.apisix_route and config.apisix_gateway_module:
            if name != DEFAULT_PROVIDER:
                raise ConfigError(
                    f"inference module config names provider {name!r} and an APISIX route: "
                    "a gateway route serves OpenAI-compatible upstreams only"
                )
            self._setup_route(context, config, api_key)
            return
        primary = context.endpoints.primary if context.endpoints is not None else None
        fallback = context.endpoints.fallback if context.endpoints is not None else None
        timeouts = context.timeouts
        if name == DEFAULT_PROVIDER:
            # Shared by the modules whose settings are the same (`fd2_inference.shared_parts`),
            # found in one look-up.
            key = api_key.reveal() if api_key else None
            shared = shared_parts.openai_compatible(
                context.http,
                context.upstream_pool,
                primary,
                config.endpoint_url,
                fallback,
                key,
                timeouts,
                self._defaults,
                config.max_tokens,
                self._logger,
                shared_parts.provider_shareable(config),
            )
            target = shared.target
            fallback_url = shared.fallback_url
            self._upstream = shared.upstream
            self._meters = shared.meters
            # An endpoint_url that is not an OpenAI path is the chat endpoint itself, as written.
            self._chat_path = shared.chat_path
            self._only_chat = (
                "its endpoint_url names a single chat endpoint" if target.chat_only else None
            )
            base_url = target.url
            if shared.provider is not None and shared.chat is not None:
                self._provider = shared.provider
                self.chat_service = shared.chat
            else:  # provider options or credentials of its own: its own provider
                options = {**config.provider_options, "chat_path": self._chat_path}
                self._provider = build_provider(
                    provider_settings(config, name, base_url, api_key, options=options)
                )
                self.chat_service = shared_parts.chat(
                    self._provider, self._upstream, self._defaults, self._logger
                )
        else:
            self._meters = _meters(self._defaults, config.max_tokens)
            # The provider's credentials, revealed once for the upstream's secrets (scrubbed
            # from what it logs) and the provider's settings.
            probe = provider_settings(config, name, "", api_key)
            base_url = provider_base_url(primary, config.endpoint_url)
            fallback_url = provider_base_url(fallback, None) if fallback else None
            credentials = tuple(probe.credentials.values())
            self._upstream = Upstream(
                context.http,
                base_url,
                None,  # the provider's calls carry its credentials in its own headers
                timeouts,
                fallback_url,
                secrets=((probe.api_key,) if probe.api_key else ()) + credentials,
                pool=context.upstream_pool,
            )
            self._chat_path = ""
            self._only_chat = None
            target = None
            self._provider = build_provider(
                provider_settings(config, name, base_url, api_key, options=dict(probe.options))
            )
            self.chat_service = shared_parts.chat(
                self._provider, self._upstream, self._defaults, self._logger
            )
        parts = ModuleParts(
            chat=self.chat_service,
            provider=name,
            defaults=self._defaults,
            logger=self._logger,
            project=context.project,
            module=context.module,
            config=context.config,
            redis=context.redis,
            upstream=self._upstream
            if name == DEFAULT_PROVIDER and self._only_chat is None
            else None,
        )
        extras: list[ExtraEndpoint] = []
        for factory in EXTRA_ENDPOINTS:
            extras += factory(parts)
        self._extras = tuple(extras)
        if not self._logger.isEnabledFor(logging.INFO):
            return  # its arguments (URLs parsed for display) cost more than the rest of set-up
        if target is None:
            self._logger.info(
                "inference module %s/%s (%s): provider %s at %s%s, %s, default model %s",
                context.project,
                context.module,
                context.environment,
                name,
                display_url(base_url),
                f" (fallback {display_url(fallback_url)})" if fallback_url else "",
                "with credentials" if probe.api_key or probe.credentials else "without credentials",
                self._defaults.model or "none",
            )
            return
        self._logger.info(
            "inference module %s/%s (%s): upstream %s%s%s, %s, default model %s",
            context.project,
            context.module,
            context.environment,
            display_url(target.url),
            " (chat completions only)" if target.chat_only else "",
            f" (fallback {display_url(fallback_url)})" if fallback_url else "",
            "with an API key" if self._upstream.authenticated else "without an API key",
            self._defaults.model or "none",
        )

    def _setup_route(
        self, context: ModuleContext, config: InferenceConfig, api_key: Secret | None
    ) -> None:
        assert config.apisix_route and config.apisix_gateway_module
        gateway = config.apisix_gateway_module
        route = gateway_route(context, gateway, config.apisix_route)
        upstream = RouteUpstream(
            context.http, route, api_key.reveal() if api_key else None, context.timeouts
        )
        self._route = RouteChat(route, upstream, self._defaults, self._logger)
        self._gateway_module = gateway
        self._only_chat = f"it is served through APISIX route {route.name!r}"
        label = f"{context.project}/{context.module} ({context.environment})"
        self._logger.info(
            "inference module %s: APISIX route %r of gateway module %r: path %s, %s over %s, %s",
            label,
            route.name,
            gateway,
            route.path,
            route.balancer.type,
            ", ".join(f"{node.origin} (weight {node.weight})" for node in route.nodes),
            "with an Authorization header" if upstream.authenticated else "without credentials",
        )
        if route.unimplemented_plugins or route.ignored:
            self._logger.warning(
                "inference module %s: APISIX route %r: plugins fd2 does not apply: %s%s",
                label,
                route.name,
                ", ".join(route.unimplemented_plugins) or "none",
                f"; fields not applied: {', '.join(route.ignored)}" if route.ignored else "",
            )

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        if self._deployed is not None:  # routing (issue 13)
            return self._deployed.endpoints()
        handlers = self._own_endpoints()  # made here: this route's own
        if self._extras:
            handlers.update(_extra_handlers(self._extras))  # an extra's path replaces one's own
        return handlers

    def _own_endpoints(self) -> dict[str, Mapping[str, Handler]]:
        if self._only_chat is not None:
            chat = self._route.handle if self._route is not None else self._chat_completions
            return {
                "/v1/chat/completions": {"POST": chat},
                **{path: {method: self._not_served} for path, method in _OTHER_ENDPOINTS},
            }
        if not self._provider.passthrough:
            return {
                "/v1/chat/completions": {"POST": self._translated_chat},
                "/v1/embeddings": {"POST": self._translated_embeddings},
                "/v1/completions": {"POST": self._not_translated},
                "/v1/models": {"GET": self._not_translated},
            }
        # C-level partials of `_inference`: no coroutine of their own per request.
        inference = self._inference  # (one bound method for the three)
        return {
            "/v1/chat/completions": {"POST": partial(inference, path=self._chat_path, kind=CHAT)},
            "/v1/completions": {"POST": partial(inference, path="/completions", kind=COMPLETIONS)},
            "/v1/embeddings": {"POST": partial(inference, path="/embeddings", kind=EMBEDDINGS)},
            "/v1/models": {"GET": self._models},
        }

    def error_renderers(self) -> Mapping[str, ErrorRenderer]:
        renderers: dict[str, ErrorRenderer] = {}
        for extra in self._extras:  # (a loop: a comprehension is a function call of its own)
            if extra.error_renderer is not None:
                renderers[extra.path] = extra.error_renderer
        return renderers

    def meters(self) -> Mapping[str, Meter]:
        if self._deployed is not None:  # routing (issue 13)
            return self._deployed.meters()
        if self._route is not None:
            return {_PATHS[CHAT]: self._route.meter}
        extra = {e.path: e.meter for e in self._extras if e.meter is not None}
        if self._only_chat is not None:
            return {_PATHS[CHAT]: self._meters[CHAT], **extra}
        if not self._provider.passthrough:
            return {_PATHS[kind]: self._meters[kind] for kind in (CHAT, EMBEDDINGS)} | extra
        return {_PATHS[kind]: meter for kind, meter in self._meters.items()} | extra

    def model_aliases(self) -> tuple[str, ...]:
        """routing (issue 13): the `model` values this module serves, for routing by project
        key (`fd2.serving.key_routing`): its deployments' aliases, or its default model."""
        if self._deployed is not None:
            return self._deployed.aliases()
        return (self._model_name,) if self._model_name else ()

    def describe(self) -> Mapping[str, Any]:
        if self._deployed is not None:  # routing (issue 13)
            return self._deployed.describe()
        if self._route is None and not self._provider.passthrough:
            return {"provider": self._provider.name}
        if self._route is not None:
            return {
                "endpoints": ["/v1/chat/completions"],
                **self._route.describe(self._gateway_module),
            }
        if self._only_chat is not None:
            return {"endpoints": ["/v1/chat/completions"]}
        return {}

    async def _chat_completions(self, request: Request, send: Send) -> None:
        await self._inference(request, send, self._chat_path, CHAT)

    async def _not_translated(self, request: Request, send: Send) -> None:
        raise NotFound(
            f"Module {request.project}/{request.module} serves /v1/chat/completions and "
            f"/v1/embeddings: its provider {self._provider.name!r} is not OpenAI-compatible."
        )

    async def _translated_chat(self, request: Request, send: Send) -> None:
        try:
            await request.body()
            prepared = prepare_chat(await request.json_object(), self._defaults)
            payload, provider, rid = prepared.payload, self._provider, request.request_id
            call = provider_call(
                provider, payload, stream=prepared.stream, request_id=rid, logger=self._logger
            )
            model = str(payload.get("model", ""))
            self._logger.debug(
                "request %s: chat over %s model=%s stream=%s",
                rid,
                provider.name,
                model,
                prepared.stream,
            )
            if prepared.stream:
                translator = provider.chat_stream(model=model, include_usage=wants_usage(payload))
                work = relay_translated_stream(
                    self._upstream,
                    provider,
                    call,
                    translator,
                    send,
                    self._logger,
                    request,
                    partial(upstream_failed, request),
                )
            else:
                translate = partial(provider.chat_answer, model=model)
                work = relay_translated_json(
                    self._upstream, provider, call, translate, send, self._logger, request
                )
            await cancel_on_disconnect(request, work)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _translated_embeddings(self, request: Request, send: Send) -> None:
        try:
            await request.body()
            payload = prepare_embedding(await request.json_object(), self._defaults).payload
            provider, rid = self._provider, request.request_id
            model = str(payload.get("model", ""))
            if (per_input := fans_out(provider)) is not None:
                try:
                    calls = per_input.embeddings_calls(payload)
                except UnsupportedParameter as exc:
                    raise unsupported(exc) from None
                count = input_count(payload)

                def merge(payloads: Sequence[bytes]) -> Mapping[str, Any]:
                    return checked(per_input.embeddings_merge(payloads, model=model), count)

                fanned = relay_fanned_out(
                    self._upstream,
                    provider,
                    calls,
                    merge,
                    send,
                    self._logger,
                    request,
                    finish=as_requested(payload),
                )
                await cancel_on_disconnect(request, fanned)
                return
            try:
                call = upstream_call(provider.embeddings_call(payload), rid)
            except UnsupportedParameter as exc:
                raise unsupported(exc) from None
            count = input_count(payload)

            def translate(body: bytes) -> Mapping[str, Any]:
                return checked(provider.embeddings_answer(body, model=model), count)

            work = relay_translated_json(
                self._upstream,
                provider,
                call,
                translate,
                send,
                self._logger,
                request,
                finish=as_requested(payload),
            )
            await cancel_on_disconnect(request, work)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _not_served(self, request: Request, send: Send) -> None:
        raise NotFound(
            f"Module {request.project}/{request.module} serves only /v1/chat/completions: "
            f"{self._only_chat}."
        )

    async def _models(self, request: Request, send: Send) -> None:
        try:
            await request.body()  # read first: from here on the disconnect watcher owns `receive`
            call = self._upstream.build(
                "GET", "/models", None, request_id=request.request_id, stream=False
            )
            work = relay_json(self._upstream, call, send, self._logger, request.request_id)
            await cancel_on_disconnect(request, work)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _inference(self, request: Request, send: Send, path: str, kind: str) -> None:
        try:
            original = await request.body()
            prepared = _PREPARE[kind](await request.json_object(), self._defaults)
            call = self._upstream.build(
                "POST",
                path,
                upstream_body(original, prepared),
                request_id=request.request_id,
                stream=prepared.stream,
            )
            self._logger.debug(
                "request %s: POST %s model=%s stream=%s defaults_applied=%s",
                request.request_id,
                path or "(endpoint_url)",
                prepared.payload.get("model"),
                prepared.stream,
                prepared.changed,
            )
            rid, logger = request.request_id, self._logger
            if prepared.stream:
                # Before sending: the prompt count is needed if the upstream leaves usage out.
                meter = self._meters[kind]
                usage = await stream_report(request, meter, prepared.payload, chat=kind == CHAT)
                work = relay_stream(
                    self._upstream,
                    call,
                    send,
                    logger,
                    rid,
                    usage,
                    partial(upstream_failed, request),
                )
            else:
                # Usage is reported only when a step reads it (nothing to do otherwise).
                usage = UsageReport(request) if request.metered else None
                work = relay_json(self._upstream, call, send, logger, rid, usage)
            # Only now that the body has been read: the watcher takes over `receive`, and a client
            # that leaves cancels the upstream call, an open stream included.
            await cancel_on_disconnect(request, work)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)


def _extra_handlers(extras: tuple[ExtraEndpoint, ...]) -> dict[str, dict[str, Handler]]:
    handlers: dict[str, dict[str, Handler]] = {}
    for extra in extras:
        methods = handlers.get(extra.path)
        if methods is None:
            handlers[extra.path] = {extra.method: extra.handler}
        else:  # made just above: this route's own
            methods[extra.method] = extra.handler
    return handlers
