"""InferenceOpenAIModule: an OpenAI-compatible upstream behind fd2, with the manifest's defaults.

Serves /v1/chat/completions, /v1/completions, /v1/embeddings (POST) and /v1/models (GET), so the
official OpenAI SDKs work against `http://<fd2>/<project>/<module>/v1` unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from fd2.disconnect import cancel_on_disconnect
from fd2.module import Handler, Module, ModuleContext
from fd2.request import ClientDisconnected, Request
from fd2.types import Send
from inference_openai.config import load_config
from inference_openai.exchange import relay_json
from inference_openai.streaming import relay_stream
from inference_openai.transforms import (
    Defaults,
    Prepared,
    defaults_from,
    display_url,
    prepare_chat,
    prepare_completion,
    prepare_embedding,
    upstream_base_url,
    upstream_body,
)
from inference_openai.upstream import Upstream
from inference_openai.usage import plan_usage, wants_usage

_Prepare = Callable[[dict[str, Any], Defaults], Prepared]


class InferenceOpenAIModule(Module):
    """Proxies OpenAI's inference API to one upstream, applying manifest defaults."""

    module_types: ClassVar[tuple[str, ...]] = ("inference_endpoint", "inference_openai")
    secret_fields: ClassVar[frozenset[str]] = frozenset({"api_key"})

    _upstream: Upstream
    _defaults: Defaults
    _logger: logging.Logger

    async def setup(self, context: ModuleContext) -> None:
        config = load_config(context.config)
        primary = context.endpoints.primary if context.endpoints is not None else None
        base_url = upstream_base_url(primary, config.endpoint_url)
        fallback = context.endpoints.fallback if context.endpoints is not None else None
        fallback_url = upstream_base_url(fallback, None) if fallback else None
        api_key = config.api_key or context.references.get("api_key")
        timeouts = context.timeouts
        self._upstream = Upstream(
            context.http, base_url, api_key.reveal() if api_key else None, timeouts, fallback_url
        )
        self._defaults = defaults_from(config)
        self._logger = context.logger
        self._logger.info(
            "inference module %s/%s (%s): upstream %s%s, %s, default model %s",
            context.project,
            context.module,
            context.environment,
            display_url(base_url),
            f" (fallback {display_url(fallback_url)})" if fallback_url else "",
            "with an API key" if self._upstream.authenticated else "without an API key",
            self._defaults.model or "none",
        )

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {
            "/v1/chat/completions": {"POST": self._chat_completions},
            "/v1/completions": {"POST": self._completions},
            "/v1/embeddings": {"POST": self._embeddings},
            "/v1/models": {"GET": self._models},
        }

    async def _chat_completions(self, request: Request, send: Send) -> None:
        await self._inference(request, send, prepare_chat, "/chat/completions")

    async def _completions(self, request: Request, send: Send) -> None:
        await self._inference(request, send, prepare_completion, "/completions")

    async def _embeddings(self, request: Request, send: Send) -> None:
        await self._inference(request, send, prepare_embedding, "/embeddings")

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

    async def _inference(self, request: Request, send: Send, prepare: _Prepare, path: str) -> None:
        try:
            original = await request.body()
            prepared = prepare(await request.json_object(), self._defaults)
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
                path,
                prepared.payload.get("model"),
                prepared.stream,
                prepared.changed,
            )
            rid, logger = request.request_id, self._logger
            if prepared.stream:
                # Counted before sending: needed if the upstream leaves usage out.
                usage = (
                    await plan_usage(prepared.payload, len(original), path == "/chat/completions")
                    if path != "/embeddings" and wants_usage(prepared.payload)
                    else None
                )
                work = relay_stream(self._upstream, call, send, logger, rid, usage)
            else:
                work = relay_json(self._upstream, call, send, logger, rid)
            # Only now that the body has been read: the watcher takes over `receive`, and a client
            # that leaves cancels the upstream call, an open stream included.
            await cancel_on_disconnect(request, work)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)
