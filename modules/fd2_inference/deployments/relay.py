"""Relaying the attempt loop's answer with the usual relays: an OpenAI-compatible target's bytes
as they are, a provider's translated (`fd2_inference.translated`), its errors mapped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import orjson

from fd2.metering import Meter
from fd2.serving.errors import UpstreamError
from fd2.serving.request import Request
from fd2.serving.request_metrics import upstream_failed
from fd2.serving.responses import send_bytes
from fd2.telemetry.scrub import Scrubber, credential_values
from fd2.types import Send
from fd2_inference.answers import ProviderError, relayed_headers, untranslatable
from fd2_inference.deployments.attempt import Tried
from fd2_inference.deployments.client import Response
from fd2_inference.exchange import send_settled
from fd2_inference.metering import UsageReport, stream_report, wants_usage
from fd2_inference.providers.base import Provider
from fd2_inference.streaming import relay_stream
from fd2_inference.translated import relay_translated_stream, report_usage
from fd2_inference.upstream import UpstreamCall


class Opened:
    """The relays' view (`upstream.Opens`) of an answer the router already opened."""

    __slots__ = ("_response", "_secrets", "total_s")

    def __init__(self, response: Response | None, secrets: tuple[str, ...], total_s: float) -> None:
        self._response = response
        self._secrets = secrets
        self.total_s = total_s

    async def open(self, call: UpstreamCall) -> Response:
        assert self._response is not None
        response, self._response = self._response, None
        return response

    def scrubber(self, call: UpstreamCall) -> Scrubber:
        return Scrubber((*self._secrets, *credential_values(call.headers)))


async def relay_tried(
    tried: Tried,
    request: Request,
    send: Send,
    *,
    path: str,
    payload: dict[str, object],
    meter: Meter,
    chat: bool,
    opened: Opened,
    logger: logging.Logger,
) -> None:
    """Answer the client with `tried` (a good answer, or the last failure's)."""
    rid = request.request_id
    call = UpstreamCall("POST", path, None, {})
    provider = tried.target.provider
    broke: Callable[[str], None] = partial(upstream_failed, request)
    if provider is not None and not provider.passthrough:
        await _translated(tried, provider, request, send, payload, opened, call, broke, logger)
        return
    if tried.live is not None:
        usage = await stream_report(request, meter, payload, chat=chat)
        await relay_stream(opened, call, send, logger, rid, usage, broke, tried.head)
    elif tried.answer is not None:
        report = UsageReport(request)
        await send_settled(send, logger, rid, tried.answer, opened, call, report)
    else:
        raise tried.error or UpstreamError("The upstream could not be reached.")


async def _translated(
    tried: Tried,
    provider: Provider,
    request: Request,
    send: Send,
    payload: dict[str, object],
    opened: Opened,
    call: UpstreamCall,
    broke: Callable[[str], None],
    logger: logging.Logger,
) -> None:
    model = tried.target.model
    if tried.live is not None:
        translator = provider.chat_stream(model=model, include_usage=wants_usage(payload))
        await relay_translated_stream(
            opened, provider, call, translator, send, logger, request, broke, tried.head
        )
        return
    if tried.answer is None:
        raise tried.error or UpstreamError("The upstream could not be reached.")
    status, body, raw = tried.answer
    if not 200 <= status < 300:
        failure = provider.failure(status, tried.headers, body or b"")
        raise ProviderError(failure, opened.scrubber(call))
    if body is None:
        raise UpstreamError(f"The upstream answered HTTP {status} with a body too large to relay.")
    try:
        answer = provider.chat_answer(body, model=model)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        logger.warning("request %s: untranslatable answer", request.request_id)
        raise untranslatable(provider.name, "its answer is not the documented shape") from None
    report_usage(request, answer.get("usage"))
    await send_bytes(send, 200, orjson.dumps(answer), headers=relayed_headers(raw))
