"""StructuredPromptModule: a prompt in, data that matches a JSON Schema out.

`POST /v1/analyze` asks an inference module of the project (a dependency, called in process
through its route) for JSON matching the request's `schema` (or the stored prompt's output
schema), validates it, and re-asks quoting the errors, at most `max_attempts` calls.
`POST /v1/analyze/batch` does that for many items with bounded concurrency, each item
succeeding or failing on its own, and sums them up.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import orjson

from fd2.module import Handler, Module, ModuleContext
from fd2.prompts.resolve import PromptResolver
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import BadRequest, ConfigError, Fd2Error
from fd2.serving.module_calls import ModuleHandle
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.responses import send_bytes
from fd2.structured.reask import structured_chat
from fd2.structured.validator import SchemaError, compiled
from fd2.types import Send
from fd2_prompts.calls import ModuleChat
from fd2_prompts.config import AnalyzeConfig, load_config
from fd2_prompts.shapes import CONFIDENCE_NOTE, AnalyzeRequest, decode, with_confidence

_CREDENTIALS: Final = (b"authorization", b"api-key", b"x-api-key")
_INFERENCE_TYPES: Final = frozenset({"inference_endpoint", "inference_openai"})
_INTERNAL: Final = "The item failed; see the request id in the gateway logs."


class StructuredPromptModule(Module):
    module_types: ClassVar[tuple[str, ...]] = ("structured_prompt",)

    async def setup(self, context: ModuleContext) -> None:
        config = load_config(context.config)
        handles = {
            name: handle
            for name, handle in context.modules.items()
            if handle.module_type in _INFERENCE_TYPES
        }
        if not handles:
            raise ConfigError(
                "structured_prompt module needs an inference module in its dependencies"
            )
        default = config.inference_module or (next(iter(handles)) if len(handles) == 1 else None)
        if default is None or default not in handles:
            raise ConfigError(
                "structured_prompt config 'inference_module' must name one of its inference "
                f"dependencies ({', '.join(sorted(handles))})"
            )
        # `options.provider` may name a module or its provider ("gemini", "openai", ...).
        by_provider: dict[str, str] = {}
        for name in handles:
            dependency = context.dependencies.get(name)
            kind = dependency.config.get("provider") if dependency is not None else None
            by_provider.setdefault(str(kind or "openai").lower(), name)
        self._config: AnalyzeConfig = config
        self._handles: Mapping[str, ModuleHandle] = handles
        self._default = default
        self._by_provider = by_provider
        self._prompts = PromptResolver.for_module(context.project, context.config, context.redis)
        self._log: logging.Logger = context.logger

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {"/v1/analyze": {"POST": self._analyze}, "/v1/analyze/batch": {"POST": self._batch}}

    def describe(self) -> Mapping[str, Any]:
        return {"inference_modules": sorted(self._handles), "default": self._default}

    async def _analyze(self, request: Request, send: Send) -> None:
        try:
            item = decode(await request.json_object())
            forward = _forward(request)
            answer = await cancel_on_disconnect(
                request, self._one(item, forward, request.request_id)
            )
            await send_bytes(send, 200, orjson.dumps(answer))
        except ClientDisconnected:
            self._log.debug("request %s: client disconnected", request.request_id)

    async def _batch(self, request: Request, send: Send) -> None:
        try:
            body = await request.json_object()
            items = body.get("items")
            if not isinstance(items, list) or not items:
                raise BadRequest(
                    "'items' must be a non-empty list of analyze requests.", param="items"
                )
            limit = self._config.max_batch_items
            if len(items) > limit:
                raise BadRequest(f"A batch takes at most {limit} items.", param="items")
            defaults = body.get("options") or {}
            if not isinstance(defaults, Mapping):
                raise BadRequest("'options' must be an object.", param="options")
            wanted = body.get("max_concurrency", self._config.batch_concurrency)
            if not isinstance(wanted, int) or isinstance(wanted, bool) or wanted < 1:
                raise BadRequest(
                    "'max_concurrency' must be a positive integer.", param="max_concurrency"
                )
            concurrency = min(wanted, self._config.batch_concurrency)
            work = self._run_batch(
                items, defaults, concurrency, _forward(request), request.request_id
            )
            answer = await cancel_on_disconnect(request, work)
            await send_bytes(send, 200, orjson.dumps(answer))
        except ClientDisconnected:
            self._log.debug("request %s: client disconnected", request.request_id)

    async def _run_batch(
        self,
        items: list[Any],
        defaults: Mapping[str, Any],
        concurrency: int,
        forward: list[tuple[bytes, bytes]],
        request_id: str,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        gate = asyncio.Semaphore(concurrency)

        async def run(index: int, raw: Any) -> dict[str, Any]:
            async with gate:
                try:
                    item = decode(raw, defaults, where=f"items[{index}].")
                    result = await self._one(item, forward, f"{request_id}-{index}")
                    return {"index": index, "success": True, "result": result}
                except Fd2Error as exc:
                    return {"index": index, "success": False, "error": _error(exc)}
                except Exception:
                    self._log.exception("request %s: batch item %d failed", request_id, index)
                    error = {"message": _INTERNAL, "type": "server_error", "code": "internal_error"}
                    return {"index": index, "success": False, "error": error}

        results = await asyncio.gather(*(run(i, raw) for i, raw in enumerate(items)))
        done = [r["result"] for r in results if r["success"]]
        return {
            "object": "analysis.batch",
            "results": results,
            "summary": {
                "total": len(results),
                "succeeded": len(done),
                "failed": len(results) - len(done),
                "valid": sum(1 for r in done if r["validation_status"] == "valid"),
                "invalid": sum(1 for r in done if r["validation_status"] == "invalid"),
                "cached": sum(1 for r in done if r["cached"]),
                "processing_time_ms": _ms(started),
            },
        }

    def _pick(self, provider: Any) -> tuple[str, ModuleHandle]:
        if provider is None:
            return self._default, self._handles[self._default]
        name = (
            provider if provider in self._handles else self._by_provider.get(str(provider).lower())
        )
        if name is None:
            raise BadRequest(
                f"Unknown provider {str(provider)[:64]!r}; this module asks "
                f"{', '.join(sorted(self._handles))}.",
                param="options.provider",
            )
        return name, self._handles[name]

    async def _one(
        self, item: AnalyzeRequest, forward: list[tuple[bytes, bytes]], request_id: str
    ) -> dict[str, Any]:
        started = time.perf_counter()
        options = item.options
        module, handle = self._pick(options.get("provider"))
        body, schema_source = await self._chat_body(item)
        confidence = bool(options.get("include_confidence"))
        asked_source = with_confidence(schema_source) if confidence else schema_source
        try:
            schema = compiled(schema_source or {})
            asked = compiled(asked_source or {})
        except SchemaError as exc:
            raise BadRequest(
                f"'schema' is not a valid JSON Schema: {exc}", param="schema"
            ) from None
        if confidence:
            body["messages"].append({"role": "system", "content": CONFIDENCE_NOTE})
        chat = ModuleChat(handle, forward, request_id, options.get("cache_ttl"))
        attempts = options.get("max_attempts") or self._config.max_attempts
        native = self._config.native_structured_output
        try:
            result = await structured_chat(chat, body, asked, native=native, max_attempts=attempts)
        except Fd2Error as exc:
            if not native or not (exc.param or "").startswith("response_format"):
                raise
            # The provider has no native structured output: the schema goes into the prompt.
            result = await structured_chat(chat, body, asked, native=False, max_attempts=attempts)
        data: Any = result.value
        score: Any = None
        if confidence and result.validated and isinstance(data, dict):
            score = data.get("confidence")
            data = data.get("data")
        valid = result.validated and schema.is_valid(data)
        usage = result.usage
        answer: dict[str, Any] = {
            "id": f"anl_{secrets.token_hex(12)}",
            "object": "analysis",
            "data": data,
            "format": item.format,
            "validation_status": "valid" if valid else "invalid",
            "validation_errors": result.errors,
            "attempts": result.attempts,
            "processing_time_ms": _ms(started),
            "provider_used": module,
            "model": result.answer.get("model"),
            "cached": chat.calls > 0 and chat.hits == chat.calls,
            "usage": {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]},
        }
        if confidence:
            answer["confidence"] = score
        return answer

    async def _chat_body(self, item: AnalyzeRequest) -> tuple[dict[str, Any], Any]:
        options = item.options
        messages: list[dict[str, Any]] = []
        system = options.get("system_prompt") or self._config.system_prompt
        if system:
            messages.append({"role": "system", "content": system})
        body: dict[str, Any] = {}
        schema = item.schema
        if isinstance(item.prompt, str):
            if len(item.prompt) > self._config.max_prompt_chars:
                raise BadRequest(
                    f"'prompt' is longer than {self._config.max_prompt_chars} characters.",
                    param="prompt",
                )
            messages.append({"role": "user", "content": item.prompt})
        else:
            rendered = await self._prompts.render(item.prompt)
            messages.extend(rendered.messages)
            body.update(rendered.parameters)
            if rendered.model:
                body["model"] = rendered.model
            if schema is None:
                schema = rendered.output_schema
        body["messages"] = messages
        model = options.get("model") or body.get("model") or self._config.default_model
        if model:
            body["model"] = model
        for name in ("temperature", "max_tokens"):
            if options.get(name) is not None:
                body[name] = options[name]
        return body, schema


def _forward(request: Request) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name in _CREDENTIALS if (value := request.header(name))]


def _error(exc: Fd2Error) -> dict[str, Any]:
    return {
        "message": exc.message,
        "type": exc.error_type,
        "code": exc.code,
        "param": exc.param,
        "status": exc.status,
    }


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
