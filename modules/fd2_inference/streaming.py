"""One streaming upstream exchange, relayed to the client event by event as it arrives.

Until the response has started, failures are raised as Fd2Errors and rendered by the core like
any other error. Once it has started the status line is gone, so a failure is reported in-band
as one OpenAI-shaped SSE error event and the stream is ended cleanly: nothing is raised out of
the handler after that point.

Every stream ends in a way its client can tell: with `[DONE]` (added by fd2 when a complete
answer came without it) or with an error event — also when the upstream's connection ends
without a framing that would show it was cut, when what the upstream sends is not an event
stream, and when the gateway shuts down before the upstream has finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from fd2.deadlines import Deadline
from fd2.serving.draining import drain_guard
from fd2.serving.errors import Fd2Error, UpstreamError
from fd2.serving.sse import SseFramer
from fd2.types import Send
from fd2_inference.answers import (
    DONE_EVENT,
    ERROR_BODY_LIMIT,
    gateway_error,
    is_event_stream,
    looks_like_events,
    relayed_headers,
    shutting_down,
    sse_error_event,
)
from fd2_inference.exchange import Answer, send_settled
from fd2_inference.metering import UsageReport
from fd2_inference.stream_push import relay_pushed
from fd2_inference.upstream import (
    CLIENT_ERRORS,
    Opens,
    PooledResponse,
    UpstreamCall,
    UpstreamResponse,
    read_answer,
)

_SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Tells nginx-style proxies in front of the gateway not to hold events back.
    (b"x-accel-buffering", b"no"),
]
_FINAL_SEND_S: Final = 1.0
"""At shutdown, how long the last event may take to go out to a client that does not read."""


class _Relay:
    """State of one relay: whether the client has been sent the response start, and its end."""

    __slots__ = (
        "broke",
        "call",
        "ended",
        "first",
        "framer",
        "head",
        "logger",
        "request_id",
        "send",
        "started",
        "upstream",
        "usage",
        "verified",
    )

    def __init__(
        self,
        upstream: Opens,
        call: UpstreamCall,
        send: Send,
        logger: logging.Logger,
        request_id: str,
        usage: UsageReport | None,
        broke: Callable[[str], None] | None = None,
        head: bytes = b"",
    ) -> None:
        self.head = head
        """routing (issue 13): the stream's first bytes, already read by the attempt loop."""
        self.broke = broke
        """Told the error code when the stream breaks after it started (the core's metrics)."""
        self.upstream = upstream
        self.call = call
        self.send = send
        # Every stream is read for usage, finish reason, model and in-stream errors (cheap: byte
        # searches, JSON parsed only for the few events that can carry them). When fd2 may have to
        # count the completion it also gathers the generated text, and when it may have to add
        # the usage chunk itself it holds [DONE] back.
        self.framer = (
            SseFramer(openai=True)  # the common case: no keywords to parse
            if usage is None
            else SseFramer(openai=True, collect_text=usage.count, hold_done=usage.emit)
        )
        self.usage = usage
        self.logger = logger
        self.request_id = request_id
        self.started = False
        self.ended = False
        self.verified = False
        """Whether the stream's first event has been seen to be an OpenAI event stream's."""
        self.first = True

    async def pump(self, response: UpstreamResponse) -> None:
        """Starts the client's response, then relays the upstream's events as they arrive.

        The pooled client's answer is pushed through `framed` from its connection's callbacks
        (`relay_pushed`): at 16 streams a worker's core is shared by all of them, so what each
        stream and each chunk costs is what delays the others' first tokens."""
        framer, send = self.framer, self.send
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, *relayed_headers(response.raw_headers)],
            }
        )
        self.started = True
        try:
            if isinstance(response, PooledResponse):
                answer, read_s = response.relay_source()
                await relay_pushed(answer, self.framed, send, read_s, self.head)
            else:
                read = _reader(response, self.head)
                framed = self.framed
                while (chunk := await read()) is not None:
                    out = framed(chunk)
                    if out:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
        except CLIENT_ERRORS:
            if not framer.done:
                raise
            # The answer is complete ([DONE] was read): end it normally, held [DONE] included.
            self.logger.debug("request %s: upstream connection broke after [DONE]", self.request_id)
        try:
            dropped = framer.finish()
        except Exception as exc:
            raise _FramingError(str(exc)) from exc
        if dropped or self.usage is not None or not framer.done or framer.error is not None:
            await self._complete(dropped)
            self._log_end(dropped)
        elif self.logger.isEnabledFor(logging.DEBUG):  # the common end: nothing left to send
            self._log_end(dropped)

    def framed(self, chunk: bytes) -> bytes | None:
        """A piece of the upstream's body → the events to relay now (None: none complete yet).
        Raises `_NotEventStream` at the first line that is not an event stream's."""
        framer = self.framer
        try:
            out: bytes = framer.feed(chunk)
        except Exception as exc:  # the native framer's (e.g. an oversized event)
            raise _FramingError(str(exc)) from exc
        if not out:
            return None
        if not self.verified:
            # The first events are relayed once they are seen to be an event stream's.
            verdict = looks_like_events(out, first=self.first)
            self.first = False
            if verdict is False:
                raise _NotEventStream
            self.verified = verdict is True
        # An error event is looked for in the framer's facts, not the bytes.
        if framer.error is not None:
            out = self._scrubbed(out)
        return out

    def _scrubbed(self, out: bytes) -> bytes:
        # Only once the upstream has sent an error event: it may quote the credentials it got.
        return self.upstream.scrubber(self.call).events(out)

    async def _complete(self, dropped: int) -> None:
        """The upstream's stream ended without a transport error: end the client's as complete,
        or raise when the answer was not complete (the stream was cut)."""
        framer, send = self.framer, self.send
        # Reported however the stream ends: what it carried is what it used.
        usage = self.usage
        last = await usage.stream_end(framer, self.request_id) if usage is not None else b""
        if framer.error is not None and not framer.done:
            return  # the upstream's own error event, relayed, is the end a client sees
        if not framer.done:
            if not self.verified:
                raise _NotEventStream if dropped else _Incomplete("it sent no event")
            if framer.finish_reason is None:
                # A connection without chunked framing ends the same way whether the upstream
                # finished or was cut (reset, crashed); only an answer's last chunk tells.
                raise _Incomplete("it sent no finish_reason and no end-of-stream event")
        if last:  # the usage chunk fd2 adds when the client asked and the upstream sent none
            await send({"type": "http.response.body", "body": last, "more_body": True})
        # [DONE], after the usage chunk as OpenAI sends it; fd2's own when the upstream sent none.
        held = framer.take_held() if self.usage is not None else b""
        if not framer.done:
            held = DONE_EVENT
        elif held and framer.error is not None:
            held = self._scrubbed(held)
        if held:
            await send({"type": "http.response.body", "body": held, "more_body": True})

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


Read = Callable[[], Awaitable[bytes | None]]
"""The next piece of an answer's body; None at its end."""


def _reader(response: UpstreamResponse, head: bytes) -> Read:
    """Reads aiohttp's `response`'s body piece by piece (`head` first when the caller had read
    it): the path without the pooled client, whose answers are pushed (`relay_pushed`)."""
    read = _pieces(response)
    if not head:
        return read
    pending = head

    async def after_head() -> bytes | None:
        nonlocal pending
        if pending:
            piece, pending = pending, b""
            return piece
        return await read()

    return after_head


def _pieces(response: UpstreamResponse) -> Read:
    """aiohttp's reads (the path without the pooled client) as a `Read`."""
    chunks: AsyncIterator[bytes] = response.content.iter_any()

    async def read() -> bytes | None:
        try:
            return await anext(chunks)
        except StopAsyncIteration:
            return None

    return read


class _FramingError(Exception):
    """The upstream's event stream could not be cut into events."""


class _NotEventStream(Exception):
    """The upstream said text/event-stream but sent something else."""


class _Incomplete(Exception):
    """The upstream's stream ended before its answer was complete."""


async def relay_stream(
    upstream: Opens,
    call: UpstreamCall,
    send: Send,
    logger: logging.Logger,
    request_id: str,
    usage: UsageReport | None = None,
    broke: Callable[[str], None] | None = None,
    head: bytes = b"",
) -> None:
    """Send a `stream: true` request upstream and relay its events (or its error answer).

    `usage` reports the stream's usage to the core when it ends; when the client asked for
    usage, a stream whose upstream sent none gets one computed by fd2, just before its [DONE].
    `head`: the body's first bytes when the caller read them already (routing, issue 13: a
    fallback or a hedge is decided on the first chunk).
    """
    relay = _Relay(upstream, call, send, logger, request_id, usage, broke, head)
    with drain_guard() as guard:
        try:
            # The exchange in this coroutine itself (one frame fewer per stream).
            plain: Answer | None = None
            try:
                with Deadline(upstream.total_s):
                    response = await upstream.open(call)
                    try:
                        # `content_type`, not `headers`: the pooled answer's headers are not
                        # copied into a multidict for it.
                        if is_event_stream(response.status, response.content_type):
                            await relay.pump(response)
                        else:
                            body = await read_answer(response, ERROR_BODY_LIMIT)
                            plain = (response.status, body, response.raw_headers)
                    finally:
                        # Read to its end, the connection is already back in the pool; cut
                        # short (a broken stream, the time limit, a client that left) it is
                        # closed, not pooled.
                        response.close()
            except Exception as exc:
                await _broken(relay, exc)
                return
            if relay.started:
                relay.ended = True
                try:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except Exception as exc:
                    _not_ended(relay, exc)
                return
            assert plain is not None
            # The upstream did not stream (an error, or a server ignoring `stream`): answer as
            # a non-streaming call would.
            logger.info(
                "request %s: upstream answered HTTP %d without a stream", request_id, plain[0]
            )
            await send_settled(send, logger, request_id, plain, upstream, call, usage)
        except asyncio.CancelledError:
            if not guard.take_cut():
                raise
            # The shutdown deadline: the upstream call is gone (closed while unwinding).
            if not relay.started:
                raise shutting_down() from None
            logger.warning("request %s: stream ended by the shutdown deadline", request_id)
            if not relay.ended:
                try:
                    async with asyncio.timeout(_FINAL_SEND_S):
                        await _end(relay, sse_error_event(shutting_down()))
                except TimeoutError:
                    logger.debug("request %s: the client took no last event", request_id)


async def _broken(relay: _Relay, exc: Exception) -> None:
    """The exchange failed: raised as an error before the response started, else reported in
    the stream as one error event that ends it."""
    upstream, logger, request_id = relay.upstream, relay.logger, relay.request_id
    error = _as_error(exc, upstream.total_s)
    if error is None:
        if relay.started:
            logger.error("request %s: stream relay failed", request_id, exc_info=exc)
            error = UpstreamError("The gateway failed while relaying the upstream stream.")
        else:
            raise exc
    if not relay.started:
        logger.warning("request %s: upstream exchange failed: %s", request_id, error.message)
        raise error from None
    logger.warning("request %s: upstream stream broke: %s", request_id, error.message)
    if relay.broke is not None:
        relay.broke(error.code or "bad_gateway")
    await _end(relay, sse_error_event(error))


async def _end(relay: _Relay, last: bytes) -> None:
    relay.ended = True
    send = relay.send
    try:
        if last:
            await send({"type": "http.response.body", "body": last, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except Exception as exc:
        _not_ended(relay, exc)


def _not_ended(relay: _Relay, exc: Exception) -> None:
    # A server that does raise once the client has gone; there is no one left to tell.
    relay.logger.debug(
        "request %s: could not end the stream (%s)", relay.request_id, type(exc).__name__
    )


def _as_error(exc: Exception, total_s: float) -> Fd2Error | None:
    if isinstance(exc, _FramingError):
        return UpstreamError(f"The upstream's event stream could not be relayed: {exc}")
    if isinstance(exc, _NotEventStream):
        return UpstreamError(
            "The upstream answered text/event-stream with something that is not an OpenAI event "
            "stream; it was not relayed.",
            code="upstream_not_event_stream",
        )
    if isinstance(exc, _Incomplete):
        return UpstreamError(
            f"The upstream's stream ended before its answer was complete ({exc}).",
            code="upstream_stream_incomplete",
        )
    return gateway_error(exc, total_s)
