"""The relays of a translated provider: the call is the provider's, the answer translated back.

Same guarantees as the passthrough relays (exchange.py, streaming.py): the whole-call time limit,
the shutdown deadline (a 503 before the answer started, an error event after), a client that
leaves cancels the upstream call (the caller runs these under `cancel_on_disconnect`), and no
credential the call carried reaches the client. Every stream ends with `[DONE]` or with one
OpenAI error event: also when the provider's stream is cut, says it failed, or cannot be framed
or translated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Final

import orjson

from fd2.metering import Usage
from fd2.serving.draining import drain_guard
from fd2.serving.errors import Fd2Error, UpstreamError
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send
from fd2_inference.answers import (
    DONE_EVENT,
    ERROR_BODY_LIMIT,
    ProviderError,
    gateway_error,
    relayed_headers,
    shutting_down,
    sse_error_event,
    untranslatable,
)
from fd2_inference.framing import deframer_for, is_stream_answer
from fd2_inference.providers.base import (
    Deframer,
    Provider,
    ProviderStreamError,
    StreamTranslator,
)
from fd2_inference.upstream import CLIENT_ERRORS, Opens, UpstreamCall, UpstreamResponse, read_answer

RawHeaders = tuple[tuple[bytes, bytes], ...]
Translate = Callable[[bytes], Mapping[str, Any]]

_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_FINAL_SEND_S: Final = 1.0
# What a translation may raise on an answer that is not the shape the provider's reference gives.
TRANSLATION_ERRORS: Final = (ValueError, KeyError, TypeError, IndexError, AttributeError)
_TRANSLATION_ERRORS: Final = TRANSLATION_ERRORS


def untranslatable_stream(exc: BaseException) -> bool:
    """Whether `exc`, raised while framing or translating a provider stream, says the stream is
    not the documented shape (a translation error, or the native framer's: an oversized event,
    a bad checksum)."""
    return isinstance(exc, _TRANSLATION_ERRORS) or type(exc).__module__ == "fd2._native"


_MAX_TOKENS: Final = 1 << 53
"""More tokens than any answer holds; a count past it (a provider's `1e300`) is no count, and
would not even serialise (orjson refuses integers past 64 bits)."""


def check_usage(usage: object) -> None:
    """Raises ValueError when a translated `usage` holds an integer count that is no token
    count (negative, or past any real one: a provider's `1e300` made an integer): the answer
    is then untranslatable, never served or metered with it. Other members are left as they
    are (OpenAI-compatible providers may add their own)."""
    if not isinstance(usage, Mapping):
        return
    for value in usage.values():
        if isinstance(value, Mapping):
            check_usage(value)
        elif isinstance(value, int) and not 0 <= value < _MAX_TOKENS:
            raise ValueError("usage: a count out of range")


def _checked(chunks: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    for chunk in chunks:
        if chunk.get("usage") is not None:
            check_usage(chunk["usage"])
    return chunks


def chunk_event(chunk: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def report_usage(request: Request | None, usage: object) -> None:
    """Reports an OpenAI-shaped `usage` mapping on the request (once, by whoever read it)."""
    if request is None or not isinstance(usage, Mapping):
        return
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    if cached is None:
        cached = usage.get("cached_tokens")
    request.report_usage(
        Usage(
            prompt_tokens=prompt if isinstance(prompt, int) else 0,
            completion_tokens=completion if isinstance(completion, int) else 0,
            cached_tokens=cached if isinstance(cached, int) else 0,
        )
    )


async def translated_answer(
    upstream: Opens,
    provider: Provider,
    call: UpstreamCall,
    translate: Translate,
    logger: logging.Logger,
    request_id: str,
) -> tuple[Mapping[str, Any], RawHeaders]:
    """Send `call`, read the whole answer and translate it (or raise the error it maps to)."""
    try:
        async with asyncio.timeout(upstream.total_s):
            response = await upstream.open(call)
            try:
                body = await read_answer(response, ERROR_BODY_LIMIT)
            finally:
                response.close()
    except (TimeoutError, *CLIENT_ERRORS) as exc:
        error = gateway_error(exc, upstream.total_s)
        assert error is not None
        logger.warning("request %s: upstream exchange failed: %s", request_id, error.message)
        raise error from None
    status = response.status
    if not 200 <= status < 300:
        raise _failed(upstream, provider, call, status, response.headers, body, logger, request_id)
    if body is None:
        raise UpstreamError(f"The upstream answered HTTP {status} with a body too large to relay.")
    try:
        answer = translate(body)
        check_usage(answer.get("usage"))
        return answer, response.raw_headers
    except _TRANSLATION_ERRORS as exc:
        logger.warning("request %s: untranslatable answer (%s)", request_id, type(exc).__name__)
        raise untranslatable(provider.name, "its answer is not the documented shape") from None


def _failed(
    upstream: Opens,
    provider: Provider,
    call: UpstreamCall,
    status: int,
    headers: Mapping[str, str],
    body: bytes | None,
    logger: logging.Logger,
    request_id: str,
) -> Fd2Error:
    logger.info("request %s: provider %s answered HTTP %d", request_id, provider.name, status)
    try:
        failure = provider.failure(status, headers, body or b"")
    except _TRANSLATION_ERRORS:
        return UpstreamError(f"The upstream answered HTTP {status}.")
    return ProviderError(failure, upstream.scrubber(call))


async def relay_translated_json(
    upstream: Opens,
    provider: Provider,
    call: UpstreamCall,
    translate: Translate,
    send: Send,
    logger: logging.Logger,
    request: Request,
    finish: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    """Answer with the translated result of `call` (`finish` adjusts it, e.g. base64
    embeddings); its usage reported on `request` when someone meters it."""
    rid = request.request_id
    with drain_guard() as guard:
        try:
            answer, raw = await translated_answer(upstream, provider, call, translate, logger, rid)
        except asyncio.CancelledError:
            if not guard.take_cut():
                raise
            logger.warning("request %s: ended by the shutdown deadline", rid)
            raise shutting_down() from None
    if request.metered:
        report_usage(request, answer.get("usage"))
    if finish is not None:
        answer = finish(answer)
    await send_bytes(send, 200, orjson.dumps(answer), headers=relayed_headers(raw))


class _Stream:
    """One translated stream relay's state."""

    __slots__ = ("call", "ended", "logger", "provider", "request", "send", "started", "upstream")

    def __init__(
        self,
        upstream: Opens,
        provider: Provider,
        call: UpstreamCall,
        send: Send,
        logger: logging.Logger,
        request: Request,
    ) -> None:
        self.upstream = upstream
        self.provider = provider
        self.call = call
        self.send = send
        self.logger = logger
        self.request = request
        self.started = False
        self.ended = False


async def relay_translated_stream(
    upstream: Opens,
    provider: Provider,
    call: UpstreamCall,
    translator: StreamTranslator,
    send: Send,
    logger: logging.Logger,
    request: Request,
    broke: Callable[[str], None] | None = None,
    head: bytes = b"",
) -> None:
    """Send a streaming `call` and relay its events translated to OpenAI chunks. `head`: the
    body's first bytes when the caller read them already (routing, issue 13)."""
    relay = _Stream(upstream, provider, call, send, logger, request)
    rid = request.request_id
    with drain_guard() as guard:
        try:
            await _stream(relay, translator, broke, head)
        except asyncio.CancelledError:
            if not guard.take_cut():
                raise
            if not relay.started:
                raise shutting_down() from None
            logger.warning("request %s: stream ended by the shutdown deadline", rid)
            if not relay.ended:
                try:
                    async with asyncio.timeout(_FINAL_SEND_S):
                        await _end(relay, sse_error_event(shutting_down()))
                except TimeoutError:
                    logger.debug("request %s: the client took no last event", rid)
        finally:
            if request.metered:
                report_usage(request, translator.usage)  # however it ended: what it used


async def _stream(
    relay: _Stream,
    translator: StreamTranslator,
    broke: Callable[[str], None] | None,
    head: bytes = b"",
) -> None:
    upstream, logger, rid = relay.upstream, relay.logger, relay.request.request_id
    try:
        async with asyncio.timeout(upstream.total_s):
            response = await upstream.open(relay.call)
            try:
                framing = relay.provider.framing
                if not is_stream_answer(framing, response.status, response.content_type):
                    body = await read_answer(response, ERROR_BODY_LIMIT)
                    raise _not_streamed(relay, response, body)
                deframer = deframer_for(framing)
                start = {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*_SSE_HEADERS, *relayed_headers(response.raw_headers)],
                }
                send = relay.send
                async for chunks in translated_chunks(response, deframer, translator, head):
                    if chunks:
                        if not relay.started:
                            # Started with the first chunk, not the provider's 200: a stream
                            # whose first event is an error (a throttling or validation
                            # exception) is still answered with that error's status.
                            await send(start)
                            relay.started = True
                        out = b"".join([chunk_event(chunk) for chunk in chunks])
                        await send({"type": "http.response.body", "body": out, "more_body": True})
                if not relay.started:
                    await send(start)
                    relay.started = True
            finally:
                response.close()
    except Exception as exc:
        error = _stream_error(relay, exc, upstream.total_s)
        if not relay.started:
            if not isinstance(exc, Fd2Error):
                logger.warning("request %s: upstream exchange failed: %s", rid, error.message)
            raise error from None
        logger.warning("request %s: provider stream broke: %s", rid, error.message)
        if broke is not None:
            broke(error.code or "bad_gateway")
        await _end(relay, sse_error_event(error))
        return
    await _end(relay, DONE_EVENT)


async def translated_chunks(
    response: UpstreamResponse,
    deframer: Deframer,
    translator: StreamTranslator,
    head: bytes = b"",
) -> AsyncIterator[Sequence[Mapping[str, Any]]]:
    """The OpenAI chunks of each read of a provider stream (none when a read completed no
    event), then the translator's last ones; raises ProviderStreamError for a stream that
    failed or ended before its end."""
    feed, translate = deframer.feed, translator.feed
    reads: AsyncIterator[bytes] = response.content.iter_any()
    if head:  # routing (issue 13): the first read, taken before the stream began
        reads = _after(head, reads)
    async for data in reads:
        events = feed(data)
        if len(events) == 1:
            yield _checked(translate(events[0]))
            continue
        chunks: list[Mapping[str, Any]] = []
        try:
            for event in events:
                chunks.extend(_checked(translate(event)))
        except (ProviderStreamError, *_TRANSLATION_ERRORS):
            # One read may hold text and then the provider's error event (or an event that
            # cannot be translated): the client gets the text before the error, as it would
            # have had the two come in separate reads.
            if chunks:
                yield chunks
            raise
        yield chunks
    deframer.finish()  # an unfinished last event is dropped: the translator's finish tells
    yield _checked(translator.finish())


async def _after(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for data in rest:
        yield data


def _not_streamed(relay: _Stream, response: UpstreamResponse, body: bytes | None) -> Fd2Error:
    status = response.status
    if 200 <= status < 300:
        return untranslatable(relay.provider.name, "it answered a stream request without a stream")
    return _failed(
        relay.upstream,
        relay.provider,
        relay.call,
        status,
        response.headers,
        body,
        relay.logger,
        relay.request.request_id,
    )


def _stream_error(relay: _Stream, exc: Exception, total_s: float) -> Fd2Error:
    if isinstance(exc, ProviderStreamError):
        return ProviderError(exc.failure, relay.upstream.scrubber(relay.call))
    error = gateway_error(exc, total_s)
    if error is not None:
        return error
    if untranslatable_stream(exc):
        relay.logger.warning(
            "request %s: untranslatable stream (%s)",
            relay.request.request_id,
            type(exc).__name__,
        )
        return untranslatable(relay.provider.name, "its stream is not the documented shape")
    relay.logger.error(
        "request %s: translated stream failed", relay.request.request_id, exc_info=exc
    )
    return UpstreamError("The gateway failed while relaying the upstream stream.")


async def _end(relay: _Stream, last: bytes) -> None:
    relay.ended = True
    try:
        if last:
            await relay.send({"type": "http.response.body", "body": last, "more_body": True})
        await relay.send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception as exc:
        relay.logger.debug(
            "request %s: could not end the stream (%s)",
            relay.request.request_id,
            type(exc).__name__,
        )
