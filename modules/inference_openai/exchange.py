"""One non-streaming upstream exchange, relayed as a complete JSON response."""

from __future__ import annotations

import asyncio
import logging

import httpx

from fd2.errors import UpstreamError
from fd2.responses import send_bytes
from fd2.types import Send
from inference_openai.answers import (
    ERROR_BODY_LIMIT,
    gateway_error,
    relayed_headers,
    settle,
)
from inference_openai.upstream import Upstream, read_answer


async def relay_json(
    upstream: Upstream, request: httpx.Request, send: Send, logger: logging.Logger, request_id: str
) -> None:
    """Send `request` upstream and answer with its JSON result, or raise an Fd2Error."""
    try:
        async with asyncio.timeout(upstream.total_s):
            response = await upstream.open(request)
            try:
                body = await read_answer(response, ERROR_BODY_LIMIT)
            finally:
                await response.aclose()
    except (TimeoutError, httpx.HTTPError) as exc:
        error = gateway_error(exc, upstream.total_s)
        assert error is not None
        logger.warning("request %s: upstream exchange failed: %s", request_id, error.message)
        raise error from None
    if not 200 <= response.status_code < 300:
        logger.info("request %s: upstream answered HTTP %d", request_id, response.status_code)
    try:
        status, payload = settle(response.status_code, body)
    except UpstreamError as error:
        logger.warning("request %s: %s", request_id, error.message)
        raise
    await send_bytes(send, status, payload, headers=relayed_headers(response.headers.raw))
