"""One streaming upstream exchange, relayed to the client event by event as it arrives.

Until the response has started, failures are raised as Fd2Errors and rendered by the core like
any other error. Once it has started the status line is gone, so a failure is reported in-band
as one OpenAI-shaped SSE error event and the stream is ended cleanly: nothing is raised out of
the handler after that point.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import aiohttp

from fd2.errors import Fd2Error, UpstreamError
from fd2.sse import SseFramer
from fd2.types import Send
from inference_openai.answers import (
    ERROR_BODY_LIMIT,
    gateway_error,
    is_event_stream,
    relayed_headers,
    sse_error_event,
)
from inference_openai.exchange import RawHeaders, send_settled
from inference_openai.upstream import Opens, UpstreamCall, read_answer
from inference_openai.usage import UsageReport

_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Tells nginx-style proxies in front of the gateway not to hold events back.
    (b"x-accel-buffering", b"no"),
]


class _Relay:
    """State of one relay: whether the client has been sent the response start."""

    __slots__ = ("framer", "logger", "request_id", "send", "started", "usage")

    def __init__(
        self, send: Send, logger: logging.Logger, request_id: str, usage: UsageReport | None
    ) -> None:
        self.send = send
        # Every stream is read for usage, finish reason, model and in-stream errors (cheap: byte
        # searches, JSON parsed only for the few events that can carry them). When fd2 may have to
        # count the completion it also gathers the generated text, and when it may have to add
        # the usage chunk itself it holds [DONE] back.
        self.framer = SseFramer(
            openai=True,
            collect_text=usage is not None and usage.count,
            hold_done=usage is not None and usage.emit,
        )
        self.usage = usage
        self.logger = logger
        self.request_id = request_id
        self.started = False

    async def start(self, response: aiohttp.ClientResponse) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, *relayed_headers(response.raw_headers)],
            }
        )
        self.started = True

    async def pump(self, response: aiohttp.ClientResponse) -> None:
        framer, send = self.framer, self.send
        try:
            # Each read is relayed at once: whatever has arrived, not a fixed-size block.
            async for chunk in response.content.iter_any():
                try:
                    out = framer.feed(chunk)
                except Exception as exc:  # the native framer's errors (e.g. an oversized event)
                    raise _FramingError(str(exc)) from exc
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        except aiohttp.ClientError:
            if not framer.done:
                raise
            # The answer is complete ([DONE] was read): end it normally, held [DONE] included.
            self.logger.debug("request %s: upstream connection broke after [DONE]", self.request_id)
        try:
            dropped = framer.finish()
        except Exception as exc:
            raise _FramingError(str(exc)) from exc
        if self.usage is not None:
            last = await self.usage.stream_end(framer, self.request_id)  # reports the usage
            if last:
                await send({"type": "http.response.body", "body": last, "more_body": True})
            held = framer.take_held()  # [DONE], after the usage chunk as OpenAI sends it
            if held:
                await send({"type": "http.response.body", "body": held, "more_body": True})
        self._log_end(dropped)

    def _log_end(self, dropped: int) -> None:
        framer, rid = self.framer, self.request_id
        if dropped:
            # WHATWG rules: an event cut off by the end of the stream is never dispatched.
            self.logger.info("request %s: dropped %d bytes of an unfinished event", rid, dropped)
        if framer.error is not None:
            self.logger.warning("request %s: upstream sent an in-stream error", rid)
        if not framer.done:
            # Not an error: some OpenAI-compatible servers end streams without [DONE].
            self.logger.debug("request %s: upstream stream ended without [DONE]", rid)
        self.logger.debug(
            "request %s: stream ended: model=%s finish_reason=%s usage=%s",
            rid,
            framer.model,
            framer.finish_reason,
            framer.usage,
        )


class _FramingError(Exception):
    """The upstream's event stream could not be cut into events."""


async def relay_stream(
    upstream: Opens,
    call: UpstreamCall,
    send: Send,
    logger: logging.Logger,
    request_id: str,
    usage: UsageReport | None = None,
) -> None:
    """Send a `stream: true` request upstream and relay its events (or its error answer).

    `usage` reports the stream's usage to the core when it ends; when the client asked for
    usage, a stream whose upstream sent none gets one computed by fd2, just before its [DONE].
    """
    relay = _Relay(send, logger, request_id, usage)
    plain: tuple[int, bytes | None, RawHeaders] | None = None
    try:
        async with asyncio.timeout(upstream.total_s):
            response = await upstream.open(call)
            try:
                content_type = response.headers.get("content-type")
                if is_event_stream(response.status, content_type):
                    await relay.start(response)
                    await relay.pump(response)
                else:
                    body = await read_answer(response, ERROR_BODY_LIMIT)
                    plain = (response.status, body, response.raw_headers)
            finally:
                # Read to its end, the connection is already back in the pool; cut short (a
                # broken stream, the time limit, a client that left) it is closed, not pooled.
                response.close()
    except Exception as exc:
        error = _as_error(exc, upstream.total_s)
        if error is None:
            if relay.started:
                logger.error("request %s: stream relay failed", request_id, exc_info=exc)
                error = UpstreamError("The gateway failed while relaying the upstream stream.")
            else:
                raise
        if not relay.started:
            logger.warning("request %s: upstream exchange failed: %s", request_id, error.message)
            raise error from None
        logger.warning("request %s: upstream stream broke: %s", request_id, error.message)
        await _end(send, logger, request_id, sse_error_event(error))
        return
    if relay.started:
        await _end(send, logger, request_id, b"")
        return
    assert plain is not None
    await _answer_plain(send, logger, request_id, *plain, usage)


async def _end(send: Send, logger: logging.Logger, request_id: str, last: bytes) -> None:
    try:
        if last:
            await send({"type": "http.response.body", "body": last, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception as exc:
        # A server that does raise once the client has gone; there is no one left to tell.
        logger.debug("request %s: could not end the stream (%s)", request_id, type(exc).__name__)


async def _answer_plain(
    send: Send,
    logger: logging.Logger,
    request_id: str,
    status: int,
    body: bytes | None,
    headers: RawHeaders,
    usage: UsageReport | None,
) -> None:
    # The upstream did not stream (an error, or a server ignoring `stream`): answer as a
    # non-streaming call would.
    logger.info("request %s: upstream answered HTTP %d without a stream", request_id, status)
    await send_settled(send, logger, request_id, status, body, headers, usage)


def _as_error(exc: Exception, total_s: float) -> Fd2Error | None:
    if isinstance(exc, _FramingError):
        return UpstreamError(f"The upstream's event stream could not be relayed: {exc}")
    return gateway_error(exc, total_s)
