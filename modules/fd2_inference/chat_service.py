"""The module's chat path in process (`base.ChatService`): OpenAI bodies in, OpenAI objects out,
over whichever provider the module is configured for (the OpenAI passthrough included).

Other endpoints of the module use it (Anthropic's inbound /v1/messages): they translate their
own API to an OpenAI chat request and back, and never see the provider. Usage is reported on the
request here, once; the caller must not report it again. The caller runs this under the
request's disconnect watcher (`fd2.serving.disconnect.cancel_on_disconnect`), as the module's
own handlers do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import Any

from fd2.serving.draining import drain_guard
from fd2.serving.errors import Fd2Error, UpstreamError
from fd2.serving.request import Request
from fd2_inference.answers import (
    ERROR_BODY_LIMIT,
    ProviderError,
    gateway_error,
    shutting_down,
    unsupported,
    untranslatable,
)
from fd2_inference.framing import deframer_for, is_stream_answer
from fd2_inference.metering import wants_usage
from fd2_inference.providers.base import (
    Provider,
    ProviderCall,
    ProviderFailure,
    ProviderStreamError,
    UnsupportedParameter,
)
from fd2_inference.transforms import Defaults, prepare_chat
from fd2_inference.translated import (
    report_usage,
    translated_answer,
    translated_chunks,
    untranslatable_stream,
)
from fd2_inference.upstream import (
    CLIENT_ERRORS,
    Upstream,
    UpstreamCall,
    UpstreamResponse,
    read_answer,
)


def upstream_call(call: ProviderCall, request_id: str) -> UpstreamCall:
    """A provider's call as the relays send it: its headers plus the request id."""
    return UpstreamCall(
        call.method, call.path, call.body, [*call.headers, ("x-request-id", request_id)]
    )


def provider_call(
    provider: Provider,
    body: Mapping[str, Any],
    *,
    stream: bool,
    request_id: str,
    logger: logging.Logger,
) -> UpstreamCall:
    """The provider's chat call for an OpenAI body; a refused parameter is a 400 naming it, a
    dropped one is logged."""
    try:
        call = provider.chat_call(body, stream=stream)
    except UnsupportedParameter as exc:
        raise unsupported(exc) from None
    if call.dropped:
        logger.info(
            "request %s: provider %s cannot honour %s: dropped (unsupported_params: drop)",
            request_id,
            provider.name,
            ", ".join(call.dropped),
        )
    return upstream_call(call, request_id)


class ProviderChat:
    """`base.ChatService` over one module's provider (`InferenceModule.chat_service`)."""

    __slots__ = ("_defaults", "_logger", "_provider", "_upstream")

    def __init__(
        self,
        provider: Provider,
        upstream: Upstream,
        defaults: Defaults,
        logger: logging.Logger,
    ) -> None:
        self._provider = provider
        self._upstream = upstream
        self._defaults = defaults
        self._logger = logger

    @property
    def provider(self) -> str:
        return self._provider.name

    def _prepared(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        payload = dict(prepare_chat(body, self._defaults).payload)
        if stream:
            payload["stream"] = True
            if not wants_usage(payload):
                # The caller's own answer needs the counts (Anthropic's message_delta has them).
                payload["stream_options"] = {"include_usage": True}
        else:
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        return payload

    async def complete(self, body: dict[str, Any], request: Request) -> Mapping[str, Any]:
        """An OpenAI `chat.completion` for `body` (Fd2Error on failure, in OpenAI's terms; a
        503 when the shutdown deadline comes first)."""
        payload = self._prepared(body, stream=False)
        rid = request.request_id
        call = provider_call(
            self._provider, payload, stream=False, request_id=rid, logger=self._logger
        )
        translate = partial(self._provider.chat_answer, model=str(payload.get("model", "")))
        with drain_guard() as guard:
            try:
                answer, _raw = await translated_answer(
                    self._upstream, self._provider, call, translate, self._logger, rid
                )
            except asyncio.CancelledError:
                if not guard.take_cut():
                    raise
                raise shutting_down() from None
        report_usage(request, answer.get("usage"))
        return answer

    async def stream(
        self, body: dict[str, Any], request: Request
    ) -> AsyncIterator[Mapping[str, Any]]:
        """The `chat.completion.chunk` objects of a streamed answer to `body`; Fd2Error before
        the first, ProviderStreamError after it (a failed or cut stream, the module's time limit,
        the shutdown deadline while waiting on the provider). The last chunk carries the usage
        (the request asks for it). A caller that stops early closes it (`aclose`): until then
        the request is held for the shutdown deadline."""
        payload = self._prepared(body, stream=True)
        rid = request.request_id
        provider, upstream = self._provider, self._upstream
        call = provider_call(provider, payload, stream=True, request_id=rid, logger=self._logger)
        translator = provider.chat_stream(model=str(payload.get("model", "")), include_usage=True)
        deadline = asyncio.get_running_loop().time() + upstream.total_s
        with drain_guard() as guard:
            try:
                async with asyncio.timeout_at(deadline):
                    response = await upstream.open(call)
            except asyncio.CancelledError:
                if not guard.take_cut():
                    raise
                raise shutting_down() from None
            except (TimeoutError, *CLIENT_ERRORS) as exc:
                error = gateway_error(exc, upstream.total_s)
                assert error is not None
                raise error from None
            try:
                if not is_stream_answer(provider.framing, response.status, response.content_type):
                    raise await self._not_streamed(response, call)
                chunks = translated_chunks(response, deframer_for(provider.framing), translator)
                while True:
                    # Bounded per read, never across a yield: the caller's own work is its own.
                    try:
                        async with asyncio.timeout_at(deadline):
                            batch = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if not guard.take_cut():
                            raise
                        raise ProviderStreamError(_as_failure(shutting_down())) from None
                    except (*CLIENT_ERRORS, TimeoutError) as exc:
                        error = gateway_error(exc, upstream.total_s)
                        assert error is not None
                        raise ProviderStreamError(_as_failure(error)) from None
                    except ProviderStreamError:
                        raise
                    except Exception as exc:
                        if not untranslatable_stream(exc):
                            raise
                        # As the chat relay does: the caller ends its stream with one error
                        # event, instead of the request failing with the exception mid-stream.
                        self._logger.warning(
                            "request %s: untranslatable stream (%s)", rid, type(exc).__name__
                        )
                        error = untranslatable(
                            provider.name, "its stream is not the documented shape"
                        )
                        raise ProviderStreamError(_as_failure(error)) from None
                    for chunk in batch:
                        yield chunk
            finally:
                response.close()
                report_usage(request, translator.usage)

    async def _not_streamed(self, response: UpstreamResponse, call: UpstreamCall) -> Fd2Error:
        status = response.status
        body = await read_answer(response, ERROR_BODY_LIMIT)
        if 200 <= status < 300:
            return UpstreamError(
                f"Provider {self._provider.name!r} answered a stream request without a stream.",
                code="upstream_untranslatable",
            )
        failure = self._provider.failure(status, response.headers, body or b"")
        return ProviderError(failure, self._upstream.scrubber(call))


def _as_failure(error: Fd2Error) -> ProviderFailure:
    return ProviderFailure(error.status, error.error_type, error.message, error.code)
