"""`POST /v1/responses` (and `GET`/`DELETE /v1/responses/{id}`) over the module's ChatService.

Errors are fd2's OpenAI-shaped errors, which is what the Responses API answers with too, so the
official SDK raises the exception it would raise against OpenAI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

import orjson

from fd2.metering import Cost, Usage
from fd2.prompts.compiled import CompiledVersion
from fd2.prompts.record import check_id
from fd2.prompts.resolve import PromptResolver, RenderedPrompt, rendered
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import BadRequest, ConfigError, Fd2Error, NotFound
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.request_metrics import UPSTREAM_ERRORS, upstream_failed
from fd2.serving.responses import send_bytes
from fd2.structured.reask import MAX_ATTEMPTS, structured_chat
from fd2.structured.validator import SchemaError, compiled
from fd2.tokens import encoding_for_model
from fd2.types import Send
from fd2_inference.answers import ProviderError
from fd2_inference.extras import ExtraEndpoint, ModuleParts
from fd2_inference.metering import count_chat
from fd2_inference.providers.base import ChatService, ProviderStreamError
from fd2_inference.responses import answer as answers
from fd2_inference.responses.events import ResponseEvents
from fd2_inference.responses.passthrough import ResponsesPassthrough
from fd2_inference.responses.request import chat_body, check_fields, input_messages
from fd2_inference.responses.store import DEFAULT_TTL_S, ResponseStore

PATH: Final = "/v1/responses"
ITEM_PATH: Final = "/v1/responses/*"
"""`/v1/responses/{id}` (the core serves a path below an endpoint through its `/*` pattern)."""
_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_DEFAULT_COMPLETION_BOUND: Final = 4096


def endpoints(parts: ModuleParts) -> Sequence[ExtraEndpoint]:
    """The endpoints this package adds to an inference module (`EXTRA_ENDPOINTS`)."""
    settings = parts.config.get("responses")
    ttl, attempts = DEFAULT_TTL_S, 3
    if settings is not None and isinstance(settings, Mapping):
        if isinstance(settings.get("ttl_s"), int):
            ttl = max(60, settings["ttl_s"])
        if isinstance(settings.get("max_attempts"), int):
            attempts = max(1, min(MAX_ATTEMPTS, settings["max_attempts"]))
    store = ResponseStore(parts.redis, parts.project, parts.module, ttl)
    if parts.redis is None and parts.config.get("prompts") is None:
        prompts = _no_prompts(parts.project)  # nothing of the module's own to check or keep
    else:
        prompts = PromptResolver.for_module(parts.project, parts.config, parts.redis)
    endpoint = ResponsesEndpoint(
        parts.chat, store, prompts, parts.logger, parts.defaults.model, attempts
    )
    if (
        settings is not None
        and isinstance(settings, Mapping)
        and settings.get("passthrough") is True
    ):
        if parts.upstream is None:
            raise ConfigError(
                "responses.passthrough needs an OpenAI-compatible upstream (no provider, and an "
                "endpoint_url that is a base URL or an OpenAI path)"
            )
        relay = ResponsesPassthrough(parts.upstream, prompts, parts.logger, parts.defaults.model)
        # Stored responses are the upstream's then: fd2 keeps none to show or delete.
        return (ExtraEndpoint(PATH, "POST", relay.handle, endpoint),)
    return (
        ExtraEndpoint(PATH, "POST", endpoint.create, endpoint),
        ExtraEndpoint(ITEM_PATH, "GET", endpoint.retrieve),
        ExtraEndpoint(ITEM_PATH, "DELETE", endpoint.delete),
    )


@lru_cache(maxsize=4096)
def _no_prompts(project: str) -> PromptResolver:
    """A project's resolver without prompts of a module's own or shared ones (read only), once
    per project rather than once per route."""
    return PromptResolver.for_module(project, {}, None)


class _Plan:
    __slots__ = ("body", "chat", "history", "store")

    def __init__(
        self, body: dict[str, Any], chat: dict[str, Any], history: list[dict[str, Any]], store: bool
    ) -> None:
        self.body = body
        self.chat = chat
        self.history = history
        """The conversation a later `previous_response_id` continues (input turns, no
        instructions: OpenAI does not carry those over either)."""
        self.store = store


class ResponsesEndpoint:
    """The Responses API of one module instance; also its Meter (fd2.metering)."""

    def __init__(
        self,
        chat: ChatService,
        store: ResponseStore,
        prompts: PromptResolver,
        logger: logging.Logger,
        default_model: str | None,
        max_attempts: int = 3,
    ) -> None:
        self._max_attempts = max_attempts
        self._chat = chat
        self._store = store
        self._prompts = prompts
        self._logger = logger
        self._default_model = default_model

    # --- fd2.metering.Meter: what limits reserve before the call

    async def model(self, request: Request) -> str | None:
        body = await request.json_object()
        model = body.get("model")
        if isinstance(model, str) and model:
            return model
        # A prompt's own model is the one used: authorise must check that one.
        version = await self._prompt_version(body)
        if version is not None and version.source.model:
            return version.source.model
        return self._default_model

    async def estimate(self, request: Request) -> Cost:
        body = await request.json_object()
        model = await self.model(request)
        try:
            messages = input_messages(body.get("input") or "")
        except Fd2Error:
            messages = []
        if isinstance(body.get("instructions"), str):
            messages.append({"role": "system", "content": body["instructions"]})
        version = await self._prompt_version(body)
        variables = body["prompt"].get("variables") if version is not None else None
        if version is not None and (variables is None or isinstance(variables, Mapping)):
            with contextlib.suppress(Fd2Error):  # the handler answers the error
                messages.extend(rendered(version, variables).messages)
        prompt = count_chat(messages, encoding_for_model(model or "")) if messages else 0
        bound = body.get("max_output_tokens")
        completion = bound if isinstance(bound, int) and bound > 0 else _DEFAULT_COMPLETION_BOUND
        return Cost(model=model, prompt_tokens=prompt, completion_bound=completion)

    async def _prompt_version(self, body: Mapping[str, Any]) -> CompiledVersion | None:
        reference = body.get("prompt")
        if not isinstance(reference, Mapping):
            return None
        try:
            prompt = await self._prompts.find(check_id(reference.get("id")))
            return prompt.version(reference.get("version"))
        except Fd2Error:
            return None  # the handler answers the error

    # --- handlers

    async def create(self, request: Request, send: Send) -> None:
        rid = request.request_id
        try:
            plan = await self._plan(await request.json_object())
            self._logger.debug(
                "request %s: POST %s model=%s stream=%s",
                rid,
                PATH,
                plan.chat.get("model"),
                bool(plan.body.get("stream")),
            )
            if plan.body.get("stream"):
                await cancel_on_disconnect(request, self._stream(request, send, plan))
                return
            headers: list[tuple[bytes, bytes]] = []
            if _schema_of(plan.chat) is not None:
                work = self._structured(request, plan.chat, headers)
            else:
                work = self._chat.complete(plan.chat, request)
            answer = await cancel_on_disconnect(request, work)
            response_id = answers.new_id("resp")
            response = answers.from_chat(plan.body, answer, response_id, store=plan.store)
            await self._keep(plan, response)
            await send_bytes(send, 200, orjson.dumps(response), headers=headers)
        except ProviderStreamError as exc:  # a stream that failed before its first chunk
            failure = exc.failure
            upstream_failed(request, failure.code or "bad_gateway")
            raise ProviderError(failure) from None
        except Fd2Error as exc:
            if isinstance(exc, UPSTREAM_ERRORS):
                upstream_failed(request, exc.code or "bad_gateway")
            raise
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", rid)

    async def retrieve(self, request: Request, send: Send) -> None:
        record = await self._stored(request)
        await send_bytes(send, 200, orjson.dumps(record["response"]))

    async def delete(self, request: Request, send: Send) -> None:
        response_id = _item_id(request)
        if not await self._store.delete(response_id):
            raise _missing(response_id)
        body = {"id": response_id, "object": "response.deleted", "deleted": True}
        await send_bytes(send, 200, orjson.dumps(body))

    async def _stored(self, request: Request) -> dict[str, Any]:
        response_id = _item_id(request)
        record = await self._store.get(response_id)
        if record is None:
            raise _missing(response_id)
        return record

    # --- the work

    async def _plan(self, body: dict[str, Any]) -> _Plan:
        check_fields(body)
        store = body.get("store", True)
        if not isinstance(store, bool):
            raise BadRequest("'store' must be a boolean.", param="store")
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous is not None:
            if not isinstance(previous, str) or not previous:
                raise BadRequest(
                    "'previous_response_id' must be a response id.", param="previous_response_id"
                )
            record = await self._store.get(previous)
            if record is None:
                raise _missing(previous, param="previous_response_id")
            history = list(record.get("history") or ())
        rendered: RenderedPrompt | None = None
        if body.get("prompt") is not None:
            rendered = await self._prompts.render(body["prompt"])
        chat = chat_body(
            body,
            history,
            rendered.messages if rendered else (),
            rendered.parameters if rendered else None,
        )
        if (
            rendered is not None
            and rendered.output_schema is not None
            and "response_format" not in chat
        ):
            chat["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": rendered.schema_name, "schema": rendered.output_schema},
            }
        if "model" not in chat and rendered is not None and rendered.model:
            chat["model"] = rendered.model
        turns = [
            *history,
            *(input_messages(body["input"]) if body.get("input") is not None else ()),
        ]
        return _Plan(body, chat, turns, store)

    async def _structured(
        self, request: Request, chat: dict[str, Any], headers: list[tuple[bytes, bytes]]
    ) -> Mapping[str, Any]:
        """A JSON Schema answer, validated here and re-asked (quoting the errors) up to
        `max_attempts` calls; the answer's headers say whether it validated and how often it
        was asked."""
        fmt = chat["response_format"]["json_schema"]
        try:
            schema = compiled(fmt["schema"])
        except SchemaError as exc:
            raise BadRequest(
                f"'text.format.schema' is not a valid JSON Schema: {exc}",
                param="text.format.schema",
            ) from None
        body = {k: v for k, v in chat.items() if k != "response_format"}

        async def call(attempt: dict[str, Any]) -> Mapping[str, Any]:
            return await self._chat.complete(attempt, request)

        name = str(fmt.get("name") or "output")
        try:
            result = await structured_chat(
                call, body, schema, name=name, max_attempts=self._max_attempts
            )
        except Fd2Error as exc:
            if not (exc.param or "").startswith("response_format"):
                raise
            # The provider has no native structured output: the schema goes into the prompt.
            result = await structured_chat(
                call, body, schema, name=name, native=False, max_attempts=self._max_attempts
            )
        request.report_usage(
            Usage(
                prompt_tokens=result.usage["prompt_tokens"],
                completion_tokens=result.usage["completion_tokens"],
            )
        )
        headers.append((b"x-fd2-structured-validated", b"true" if result.validated else b"false"))
        headers.append((b"x-fd2-structured-attempts", str(result.attempts).encode()))
        return result.answer

    async def _keep(self, plan: _Plan, response: dict[str, Any]) -> None:
        if not plan.store:
            return
        history = [*plan.history, *answers.history_messages(response["output"])]
        await self._store.put(response["id"], {"response": response, "history": history})

    async def _stream(self, request: Request, send: Send, plan: _Plan) -> None:
        model = str(plan.chat.get("model") or self._default_model or "")
        events = ResponseEvents(
            answers.skeleton(plan.body, answers.new_id("resp"), model, store=plan.store)
        )
        chunks = self._chat.stream(plan.chat, request)
        try:
            # Failures before the first chunk are raised: the client gets an error answer.
            first = await anext(chunks, None)
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            opening = events.start() + (events.feed(first) if first is not None else b"")
            await send({"type": "http.response.body", "body": opening, "more_body": True})
            tail = await self._relay(request, send, chunks, events)
            await send({"type": "http.response.body", "body": tail, "more_body": False})
            if events.response["status"] != "failed":
                await self._keep(plan, events.response)
        finally:
            closing = getattr(chunks, "aclose", None)
            if closing is not None:
                await closing()

    async def _relay(
        self,
        request: Request,
        send: Send,
        chunks: AsyncIterator[Mapping[str, Any]],
        events: ResponseEvents,
    ) -> bytes:
        try:
            async for chunk in chunks:
                data = events.feed(chunk)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        except ProviderStreamError as exc:
            failure = exc.failure
            upstream_failed(request, failure.code or "bad_gateway")
            self._logger.info("request %s: stream failed: %s", request.request_id, failure.code)
            return events.fail(failure.status, failure.code, failure.message)
        except Fd2Error as exc:
            if isinstance(exc, UPSTREAM_ERRORS):
                upstream_failed(request, exc.code or "bad_gateway")
            return events.fail(exc.status, exc.code, exc.message)
        return events.finish()


def _schema_of(chat: Mapping[str, Any]) -> Any:
    fmt = chat.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    return None


def _item_id(request: Request) -> str:
    response_id = request.path.rsplit("/", 1)[-1]
    if not response_id.startswith("resp_") or len(response_id) > 64:
        raise _missing(response_id)
    return response_id


def _missing(response_id: str, param: str | None = None) -> NotFound:
    shown = response_id[:64]
    return NotFound(
        f"Response with id {shown!r} not found.", param=param, code="response_not_found"
    )
