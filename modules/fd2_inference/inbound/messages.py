"""`POST /v1/messages`: Anthropic's Messages API, served from the module's OpenAI chat path.

The request is translated to an OpenAI chat body (anthropic_request.py) and run through the
module's `ChatService`, whichever provider serves it; the answer, or each chunk of a stream, is
translated back (anthropic_answer.py, anthropic_stream.py). The chat path reports the usage on
the request; this endpoint only translates. Errors use Anthropic's shape
(`{"type": "error", "error": {"type", "message"}}`) with fd2's status and headers, so the
official `anthropic` SDK raises the exception it would raise against Anthropic itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final, cast

import orjson

from fd2.metering import Cost
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import Fd2Error
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.request_metrics import UPSTREAM_ERRORS, upstream_failed
from fd2.serving.responses import send_bytes
from fd2.tokens import encoding_for_model
from fd2.types import Send
from fd2_inference.extras import ExtraEndpoint, ModuleParts
from fd2_inference.inbound.anthropic_answer import anthropic_message, error_body
from fd2_inference.inbound.anthropic_request import openai_body
from fd2_inference.inbound.anthropic_stream import MessagesStream
from fd2_inference.metering import count_chat
from fd2_inference.providers.base import ChatService, ProviderStreamError, UnsupportedParameter

PATH: Final = "/v1/messages"
_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


def endpoints(parts: ModuleParts) -> Sequence[ExtraEndpoint]:
    """The endpoint this package adds to an inference module (`extra_endpoints.EXTRA_ENDPOINTS`),
    whatever its provider."""
    if type(parts.chat).__hash__ is not object.__hash__:  # equal by value: not shared
        return _over.__wrapped__(parts.chat, parts.logger)
    return _over(cast(Hashable, parts.chat), parts.logger)


@lru_cache(maxsize=4096)
def _over(chat: Hashable, logger: logging.Logger) -> tuple[ExtraEndpoint, ...]:
    """Once per chat service: the endpoint keeps nothing of its own, and modules with the same
    settings share their chat service (`fd2_inference.shared_parts`)."""
    endpoint = MessagesEndpoint(cast(ChatService, chat), logger)
    return (ExtraEndpoint(PATH, "POST", endpoint.handle, endpoint.meter, _anthropic_error),)


def _anthropic_error(exc: Fd2Error, request_id: str) -> bytes:
    """The core's refusals on this endpoint (401, 403, 429, ...) in Anthropic's error shape."""
    return error_body(exc.status, exc.message, request_id)


class MessagesMeter:
    """The fd2.metering Meter of `/v1/messages`: the prompt counted as the chat path counts the
    translated request, the completion bound is the request's `max_tokens` (required)."""

    __slots__ = ()

    async def model(self, request: Request) -> str | None:
        model = (await request.json_object()).get("model")
        return model if isinstance(model, str) and model else None

    async def estimate(self, request: Request) -> Cost:
        body = openai_body(await request.json_object())
        model: str = body["model"]
        prompt = count_chat(body["messages"], encoding_for_model(model))
        return Cost(model=model, prompt_tokens=prompt, completion_bound=body["max_tokens"])


class MessagesEndpoint:
    """The `/v1/messages` handler of one module instance, over its ChatService."""

    __slots__ = ("_chat", "_logger", "meter")

    def __init__(self, chat: ChatService, logger: logging.Logger) -> None:
        self._chat = chat
        self._logger = logger
        self.meter = MessagesMeter()

    async def handle(self, request: Request, send: Send) -> None:
        rid = request.request_id
        try:
            body = openai_body(await request.json_object())
            self._logger.debug(
                "request %s: POST %s model=%s stream=%s",
                rid,
                PATH,
                body["model"],
                body.get("stream", False),
            )
            if body.get("stream"):
                await cancel_on_disconnect(request, self._stream(request, send, body))
                return
            answer = await cancel_on_disconnect(request, self._chat.complete(body, request))
            message = orjson.dumps(anthropic_message(answer, rid))
            await send_bytes(send, 200, message, headers=[(b"request-id", rid.encode())])
        except Fd2Error as exc:
            if isinstance(exc, UPSTREAM_ERRORS):
                upstream_failed(request, exc.code or "bad_gateway")
            headers = [*exc.extra_headers(), (b"request-id", rid.encode())]
            await send_bytes(
                send, exc.status, error_body(exc.status, exc.message, rid), headers=headers
            )
        except ProviderStreamError as exc:  # a stream that failed before its first chunk
            failure = exc.failure
            upstream_failed(request, failure.code or "bad_gateway")
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in failure.headers]
            await send_bytes(
                send,
                failure.status,
                error_body(failure.status, failure.message, rid),
                headers=headers,
            )
        except UnsupportedParameter as exc:
            await send_bytes(send, 400, error_body(400, str(exc), rid))
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", rid)

    async def _stream(self, request: Request, send: Send, body: dict[str, Any]) -> None:
        rid = request.request_id
        cost = request.cost
        translator = MessagesStream(
            model=body["model"],
            request_id=rid,
            prompt_estimate=cost.prompt_tokens if cost is not None else 0,
        )
        chunks = self._chat.stream(body, request)
        try:
            # Failures before the first chunk are raised: the client gets an error answer.
            first = await anext(chunks, None)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*_SSE_HEADERS, (b"request-id", rid.encode())],
                }
            )
            opening = translator.feed(first) if first is not None else b""
            await send({"type": "http.response.body", "body": opening, "more_body": True})
            tail = await self._relay(request, send, chunks, translator)
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            closing = getattr(chunks, "aclose", None)
            if closing is not None:
                await closing()

    async def _relay(
        self,
        request: Request,
        send: Send,
        chunks: AsyncIterator[Mapping[str, Any]],
        translator: MessagesStream,
    ) -> bytes:
        try:
            async for chunk in chunks:
                data = translator.feed(chunk)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        except ProviderStreamError as exc:
            upstream_failed(request, exc.failure.code or "bad_gateway")
            self._logger.info("request %s: stream failed: %s", request.request_id, exc.failure.code)
            return translator.error(exc.failure.status, exc.failure.message)
        except Fd2Error as exc:
            if isinstance(exc, UPSTREAM_ERRORS):
                upstream_failed(request, exc.code or "bad_gateway")
            return translator.error(exc.status, exc.message)
        return translator.finish()
