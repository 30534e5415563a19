"""ModelServerModule: the RAG devkit's model server (embeddings, rerank, classify) behind fd2.

Serves the model server's own API at the module's route — `POST /embeddings`, `/rerank`,
`/classify`, `GET /health` — and OpenAI's `POST /v1/embeddings`, so the `openai` SDK's
`embeddings.create` works against `http://<fd2>/<project>/<module>/v1`. The models a request may
use are the manifest's `available_*_models` (and default); a request with more texts than
`batch_size` is sent as several batches, a few at a time, and answered as one, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar, Final

import orjson

from fd2.metering import Meter
from fd2.module import Handler, Health, Module, ModuleContext
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import Fd2Error, UpstreamError
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.responses import send_bytes
from fd2.types import Send
from fd2_inference.upstream import UpstreamCall
from fd2_model_server.bodies import (
    CLASSIFY,
    EMBEDDINGS,
    RERANK,
    MergeError,
    ModelChoice,
    batches,
    merge,
    prepare,
    results_of,
)
from fd2_model_server.config import ModelServerConfig, load_config
from fd2_model_server.metering import ModelServerMeter
from fd2_model_server.openai_shape import (
    check_options,
    encoding_format,
    openai_answer,
    openai_texts,
)
from fd2_rag.bodies import encoded
from fd2_rag.devkit import DevkitService
from fd2_rag.identity import forwarded_authorization

CONCURRENT_BATCHES: Final = 4
"""Batches of one request in flight at once: enough to overlap the server's work, few enough
that one large request does not take every worker of the model server."""
_HEALTH_S: Final = 2.0
_LABEL: Final = "model server"


class ModelServerModule(Module):
    """Proxies the devkit model server's API to one server, enforcing the manifest's models."""

    module_types: ClassVar[tuple[str, ...]] = ("model_server",)
    secret_fields: ClassVar[frozenset[str]] = frozenset({"api_key"})
    cache_key_ignores: ClassVar[frozenset[str]] = frozenset({"user", "encoding_format"})

    _config: ModelServerConfig
    _service: DevkitService
    _choices: dict[str, ModelChoice]
    _paths: dict[str, str]
    _logger: logging.Logger

    async def setup(self, context: ModuleContext) -> None:
        raw = dict(context.config)
        if not raw.get("service_url") and context.endpoints is not None:
            raw["service_url"] = context.endpoints.primary  # a single-module manifest's URL
        config = self._config = load_config(raw)
        self._logger = context.logger
        self._service = DevkitService(
            context.http,
            config.service_url,
            label=_LABEL,
            request_timeout_s=config.request_timeout,
            connect_s=context.timeouts.connect_s,
            max_retries=config.max_retries,
        )
        self._choices = {
            EMBEDDINGS: ModelChoice(
                kind="embeddings",
                default=config.default_embedding_model,
                available=tuple(config.available_embedding_models),
            ),
            RERANK: ModelChoice(
                kind="reranking",
                default=config.default_reranker_model,
                available=tuple(config.available_reranker_models),
            ),
            CLASSIFY: ModelChoice(
                kind="classification",
                default=config.default_classifier_model,
                available=tuple(config.available_classifier_models),
            ),
        }
        self._paths = {
            EMBEDDINGS: config.embeddings_endpoint,
            RERANK: config.rerank_endpoint,
            CLASSIFY: config.classify_endpoint,
        }
        self._logger.info(
            "model_server module %s/%s (%s): batches of %d, %s",
            context.project,
            context.module,
            context.environment,
            config.batch_size,
            "with its API key"
            if config.api_key_enabled
            else "passing the caller's JWT on"
            if config.jwt_auth_enabled
            else "sending no credential",
        )

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {
            "/embeddings": {"POST": partial(self._native, EMBEDDINGS)},
            "/rerank": {"POST": partial(self._native, RERANK)},
            "/classify": {"POST": partial(self._native, CLASSIFY)},
            "/health": {"GET": self._health},
            "/v1/embeddings": {"POST": self._openai_embeddings},
        }

    def meters(self) -> Mapping[str, Meter]:
        return {
            "/embeddings": ModelServerMeter(EMBEDDINGS, partial(self._prepare, EMBEDDINGS)),
            "/rerank": ModelServerMeter(RERANK, partial(self._prepare, RERANK)),
            "/classify": ModelServerMeter(CLASSIFY, partial(self._prepare, CLASSIFY)),
            "/v1/embeddings": ModelServerMeter(EMBEDDINGS, self._openai_body),
        }

    def describe(self) -> Mapping[str, Any]:
        return {
            "batch_size": self._config.batch_size,
            "models": {
                choice.kind: sorted({*choice.available, *filter(None, [choice.default])})
                for choice in self._choices.values()
            },
        }

    async def health(self) -> Health:
        call = self._call("GET", self._config.health_endpoint, None, "health", None)
        try:
            async with asyncio.timeout(_HEALTH_S):
                await self._service.exchange(call, idempotent=True)
        except (Fd2Error, TimeoutError) as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True)

    def _prepare(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return prepare(kind, body, self._choices[kind])

    def _openai_body(self, body: dict[str, Any]) -> dict[str, Any]:
        check_options(body)
        encoding_format(body)
        texts = openai_texts(body)
        model = self._choices[EMBEDDINGS].pick(body.get("model"), param="model")
        return {"texts": texts, **({"model_name": model} if model else {})}

    def _call(
        self, method: str, path: str, body: bytes | None, request_id: str, auth: str | None
    ) -> UpstreamCall:
        return self._service.build(method, path, body, request_id=request_id, authorization=auth)

    def _authorization(self, request: Request) -> str | None:
        config = self._config
        if config.api_key_enabled and config.api_key is not None:
            return f"Bearer {config.api_key.reveal()}"
        identity = request.identity
        api_key_caller = identity is not None and not identity.credential.startswith("jwt:")
        if config.api_key_enabled and api_key_caller:
            # `either`: a caller who came with a project API key has no token to pass on, and
            # the key itself authenticates to the gateway only.
            return None
        return forwarded_authorization(request, config.jwt_auth_enabled)

    async def _native(self, kind: str, request: Request, send: Send) -> None:
        try:
            body = self._prepare(kind, await request.json_object())
            auth = self._authorization(request)
            work = self._run(kind, body, request.request_id, auth)
            answer = await cancel_on_disconnect(request, work)
            await send_bytes(send, 200, answer)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _openai_embeddings(self, request: Request, send: Send) -> None:
        try:
            original = await request.json_object()
            body = self._openai_body(original)
            fmt = encoding_format(original)
            auth = self._authorization(request)
            work = self._run(EMBEDDINGS, body, request.request_id, auth)
            answer = orjson.loads(await cancel_on_disconnect(request, work))
            vectors = answer.get("embeddings") if isinstance(answer, dict) else None
            if not isinstance(vectors, list) or not all(_is_vector(item) for item in vectors):
                raise UpstreamError(f"The {_LABEL} answered embeddings that are not vectors.")
            model = body.get("model_name") or answer.get("model") or ""
            meter = ModelServerMeter(EMBEDDINGS, self._openai_body)
            tokens = (await request.estimate(meter)).prompt_tokens
            await send_bytes(send, 200, openai_answer(vectors, str(model), fmt, tokens))
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    async def _run(self, kind: str, body: dict[str, Any], rid: str, auth: str | None) -> bytes:
        """The model server's answer to `body`, sent in batches when it has too many texts."""
        path = self._paths[kind]
        parts = batches(body, self._config.batch_size)
        if len(parts) == 1:
            call = self._call("POST", path, encoded(body), rid, auth)
            answer = await self._service.exchange(call, idempotent=True)
            try:
                results_of(kind, answer.value, len(body["texts"]))
            except MergeError as exc:
                raise UpstreamError(f"The {_LABEL} answered badly: {exc}.") from None
            return answer.body
        answers: list[Any] = [None] * len(parts)
        pending = iter(range(len(parts)))

        async def worker() -> None:
            # A few workers take the batches in turn: never more calls in flight, nor more
            # tasks alive, than CONCURRENT_BATCHES, however many batches a request makes.
            for index in pending:
                call = self._call("POST", path, encoded(parts[index]), rid, auth)
                answers[index] = (await self._service.exchange(call, idempotent=True)).value

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(CONCURRENT_BATCHES, len(parts))):
                    group.create_task(worker())
        except ExceptionGroup as failed:
            # The first failure answers; the other workers were cancelled with it.
            raise _first_error(failed) from None
        self._logger.debug("request %s: %d batches of %s", rid, len(parts), kind)
        try:
            merged = merge(kind, answers, [len(part["texts"]) for part in parts])
        except MergeError as exc:
            raise UpstreamError(f"The {_LABEL} answered badly: {exc}.") from None
        return orjson.dumps(merged)

    async def _health(self, request: Request, send: Send) -> None:
        try:
            await request.body()
            call = self._call("GET", self._config.health_endpoint, None, request.request_id, None)
            answer = await cancel_on_disconnect(
                request, self._service.exchange(call, idempotent=True)
            )
            await send_bytes(send, 200, answer.body)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)


def _is_vector(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, float | int) and not isinstance(item, bool) for item in value
    )


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        return exc
    return UpstreamError(f"The {_LABEL} call failed.")
