"""RagServiceModule: a RAG devkit service behind fd2, with the manifest's defaults.

Serves the devkit's own API at the module's route, so a client written for the devkit only
changes its base URL: `POST /query` and `POST /retrieve` (also at the devkit's paths
`/api/v1/query` and `/api/v1/retrieve`), `GET /health`, and its OpenAI-compatible
`POST /v1/chat/completions` (streamed when asked) and `GET /v1/models`, where the model is the
RAG configuration. Where the service lives: `service_url` + `query_endpoint` / `retrieve_endpoint`
(the Control Tower's fields); its health at the same level as `query_endpoint`; its OpenAI
endpoints at the service's root (`service_url` without a trailing `/api/v1`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar, Final

from fd2.auth.errors import Forbidden
from fd2.metering import Meter
from fd2.module import Handler, Health, Module, ModuleContext
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import Fd2Error
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.responses import send_bytes
from fd2.types import Send
from fd2_inference.streaming import relay_stream
from fd2_rag.bodies import (
    chat_configuration,
    configurations_read,
    encoded,
    prepare_chat,
    prepare_query,
    prepare_retrieve,
    query_configuration,
)
from fd2_rag.config import RagServiceConfig, load_config
from fd2_rag.devkit import DevkitService
from fd2_rag.identity import forwarded_authorization
from fd2_rag.metering import RagMeter, reported_usage

_HEALTH_S: Final = 2.0
_LABEL: Final = "RAG service"
_DEVKIT_PREFIX: Final = "/api/v1"

_Prepare = Callable[[dict[str, Any], RagServiceConfig], dict[str, Any]]
_Configurations = Callable[[dict[str, Any]], list[str]]


class RagServiceModule(Module):
    """Proxies the RAG devkit's query, retrieve and chat API to one RAG service."""

    module_types: ClassVar[tuple[str, ...]] = ("rag_service",)
    cache_key_ignores: ClassVar[frozenset[str]] = frozenset({"stream", "debug"})

    _config: RagServiceConfig
    _service: DevkitService
    _openai: DevkitService
    _logger: logging.Logger
    _health_path: str

    async def setup(self, context: ModuleContext) -> None:
        raw = dict(context.config)
        if not raw.get("service_url") and context.endpoints is not None:
            raw["service_url"] = context.endpoints.primary  # a single-module manifest's URL
        config = self._config = load_config(raw)
        self._logger = context.logger
        service = partial(
            DevkitService,
            context.http,
            label=_LABEL,
            request_timeout_s=config.request_timeout,
            connect_s=context.timeouts.connect_s,
            max_retries=config.max_retries,
        )
        self._service = service(config.service_url)
        base = config.service_url.rstrip("/")
        self._openai = service(base.removesuffix(_DEVKIT_PREFIX))
        self._health_path = config.query_endpoint.rpartition("/")[0] + "/health"
        self._logger.info(
            "rag_service module %s/%s (%s): configuration %r, %s, %s",
            context.project,
            context.module,
            context.environment,
            config.configuration_name,
            "passing the caller's JWT on" if config.jwt_auth_enabled else "sending no credential",
            f"time limit {config.request_timeout:g} s, up to {config.max_retries} retries",
        )

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        query = {"POST": self._query}
        retrieve = {"POST": self._retrieve}
        health = {"GET": self._health}
        return {
            "/query": query,
            "/retrieve": retrieve,
            "/health": health,
            _DEVKIT_PREFIX + "/query": query,
            _DEVKIT_PREFIX + "/retrieve": retrieve,
            _DEVKIT_PREFIX + "/health": health,
            "/v1/chat/completions": {"POST": self._chat},
            "/v1/models": {"GET": self._models},
        }

    def meters(self) -> Mapping[str, Meter]:
        config = self._config
        query = RagMeter(partial(prepare_query, config=config), query_configuration, answers=True)
        retrieve = RagMeter(
            partial(prepare_retrieve, config=config), configurations_read, answers=False
        )
        return {
            "/query": query,
            "/retrieve": retrieve,
            _DEVKIT_PREFIX + "/query": query,
            _DEVKIT_PREFIX + "/retrieve": retrieve,
            "/v1/chat/completions": RagMeter(
                partial(prepare_chat, config=config), chat_configuration, answers=True
            ),
        }

    def describe(self) -> Mapping[str, Any]:
        return {
            "configuration_name": self._config.configuration_name,
            "jwt_passed_on": self._config.jwt_auth_enabled,
        }

    async def health(self) -> Health:
        call = self._service.build("GET", self._health_path, None, request_id="health")
        try:
            async with asyncio.timeout(_HEALTH_S):
                await self._service.exchange(call, idempotent=False)
        except (Fd2Error, TimeoutError) as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True)

    async def _query(self, request: Request, send: Send) -> None:
        await self._forward(
            request, send, prepare_query, query_configuration, self._config.query_endpoint, False
        )

    async def _retrieve(self, request: Request, send: Send) -> None:
        # Retrieval only reads: an answer from a proxy saying the service is not there yet may
        # be tried again. A query generates an answer with an LLM, so it is not repeated.
        await self._forward(
            request,
            send,
            prepare_retrieve,
            configurations_read,
            self._config.retrieve_endpoint,
            True,
        )

    async def _forward(
        self,
        request: Request,
        send: Send,
        prepare: _Prepare,
        configurations: _Configurations,
        path: str,
        idempotent: bool,
    ) -> None:
        try:
            body = prepare(await request.json_object(), self._config)
            allowed_configurations(request, configurations(body))
            authorization = forwarded_authorization(request, self._config.jwt_auth_enabled)
            call = self._service.build(
                "POST",
                path,
                encoded(body),
                request_id=request.request_id,
                authorization=authorization,
            )
            answer = await cancel_on_disconnect(
                request, self._service.exchange(call, idempotent=idempotent)
            )
            await send_bytes(send, 200, answer.body)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _chat(self, request: Request, send: Send) -> None:
        try:
            body = prepare_chat(await request.json_object(), self._config)
            authorization = forwarded_authorization(request, self._config.jwt_auth_enabled)
            stream = body.get("stream") is True
            call = self._openai.build(
                "POST",
                "/v1/chat/completions",
                encoded(body),
                request_id=request.request_id,
                authorization=authorization,
                stream=stream,
            )
            rid = request.request_id
            if stream:
                work = relay_stream(self._openai, call, send, self._logger, rid)
                await cancel_on_disconnect(request, work)
                return
            answer = await cancel_on_disconnect(
                request, self._openai.exchange(call, idempotent=False)
            )
            if request.metered:
                usage = reported_usage(answer.value)
                if usage is not None:
                    request.report_usage(usage)
            await send_bytes(send, 200, answer.body)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _models(self, request: Request, send: Send) -> None:
        try:
            await request.body()  # read first: from here on the disconnect watcher owns `receive`
            call = self._openai.build("GET", "/v1/models", None, request_id=request.request_id)
            answer = await cancel_on_disconnect(
                request, self._openai.exchange(call, idempotent=True)
            )
            await send_bytes(send, 200, answer.body)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _health(self, request: Request, send: Send) -> None:
        try:
            await request.body()
            call = self._service.build(
                "GET", self._health_path, None, request_id=request.request_id
            )
            answer = await cancel_on_disconnect(
                request, self._service.exchange(call, idempotent=True)
            )
            await send_bytes(send, 200, answer.body)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)


def allowed_configurations(request: Request, names: list[str]) -> None:
    """403 unless a caller limited to some models may use every configuration the call reads.

    The core's check saw the primary one (the meter's model); a multi-configuration retrieve
    reads the others too, and the devkit checks a token against the primary alone."""
    identity = request.identity
    if identity is None or identity.models is None:
        return
    if any(name not in identity.models for name in names):
        raise Forbidden()
