"""One non-streaming upstream exchange, relayed as a complete JSON response."""

from __future__ import annotations

import asyncio
import logging

from fd2.deadlines import Deadline
from fd2.serving.draining import drain_guard
from fd2.serving.errors import UpstreamError
from fd2.serving.responses import send_bytes
from fd2.types import Send
from fd2_inference.answers import (
    ERROR_BODY_LIMIT,
    gateway_error,
    relayed_headers,
    settle,
    shutting_down,
)
from fd2_inference.metering import UsageReport
from fd2_inference.upstream import CLIENT_ERRORS, Opens, UpstreamCall, answer_now, read_answer

RawHeaders = tuple[tuple[bytes, bytes], ...]
Answer = tuple[int, bytes | None, RawHeaders]
"""An upstream answer read in full: status, body (None: too large), headers."""


async def relay_json(
    upstream: Opens,
    call: UpstreamCall,
    send: Send,
    logger: logging.Logger,
    request_id: str,
    usage: UsageReport | None = None,
) -> None:
    """Send `call` upstream and answer with its JSON result, or raise an Fd2Error (a 503 when
    the shutdown deadline comes first). `usage` reports the answer's usage to the core.

    One coroutine for the whole exchange (every request takes this path)."""
    with drain_guard() as guard:
        try:
            try:
                with Deadline(upstream.total_s):
                    response = await upstream.open(call)
                    try:
                        body = answer_now(response) or await read_answer(response, ERROR_BODY_LIMIT)
                    finally:
                        # A body read to its end has already given its connection back to the
                        # pool, and then this only marks the response done. One cut short (a
                        # failure, a timeout, a cancellation, an oversized error body) has its
                        # connection closed, not pooled.
                        response.close()
            except (TimeoutError, *CLIENT_ERRORS) as exc:
                error = gateway_error(exc, upstream.total_s)
                assert error is not None
                logger.warning(
                    "request %s: upstream exchange failed: %s", request_id, error.message
                )
                raise error from None
            status = response.status
            if not 200 <= status < 300:
                logger.info("request %s: upstream answered HTTP %d", request_id, status)
            answer = (status, body, response.raw_headers)
            await send_settled(send, logger, request_id, answer, upstream, call, usage)
        except asyncio.CancelledError:
            if not guard.take_cut():
                raise
            logger.warning("request %s: ended by the shutdown deadline", request_id)
            raise shutting_down() from None


async def send_settled(
    send: Send,
    logger: logging.Logger,
    request_id: str,
    answer: Answer,
    upstream: Opens,
    call: UpstreamCall,
    usage: UsageReport | None = None,
) -> None:
    """Answer with what `settle` makes of an upstream answer read in full (or raise its error).

    An error body is relayed without the credentials `call` carried upstream."""
    status, body, raw_headers = answer
    scrubber = None if 200 <= status < 300 else upstream.scrubber(call)
    try:
        status, payload, reported = settle(status, body, scrubber)
    except UpstreamError as error:
        logger.warning("request %s: %s", request_id, error.message)
        raise
    if usage is not None:
        usage.answer(reported)  # from the body as read, never a second copy of it
    await send_bytes(send, status, payload, headers=relayed_headers(raw_headers))
