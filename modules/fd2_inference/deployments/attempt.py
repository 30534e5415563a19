"""One upstream attempt on one target, classified: a good answer, or why it failed.

The attempt loop (`router.py`) only sees `Tried`. The client is behind `client.Client` (aiohttp's
session today); an attempt reads a whole answer, except a stream's good answer, which stays open
for the relay.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from typing import Any, Final

import orjson

from fd2.serving.errors import Fd2Error, UpstreamError
from fd2_inference.answers import ERROR_BODY_LIMIT, is_event_stream, unsupported
from fd2_inference.deployments.client import Client, Response
from fd2_inference.deployments.config import Cause
from fd2_inference.deployments.target import Target
from fd2_inference.exchange import Answer
from fd2_inference.framing import is_stream_answer
from fd2_inference.providers.base import UnsupportedParameter

_MAX_RETRY_AFTER_S: Final = 60.0
_DEFAULT_COOL_S: Final = 1.0
_CONTEXT_MARKERS: Final = (
    b"context_length_exceeded",
    b"maximum context length",
    b"prompt is too long",  # Anthropic's
)
_FILTER_MARKERS: Final = (b"content_filter", b"content_policy_violation")


class Tried:
    """An attempt's result. `cause` None: a good answer (live for a stream, else `answer`)."""

    __slots__ = (
        "answer",
        "cause",
        "error",
        "head",
        "headers",
        "live",
        "retry_after",
        "target",
        "ttfb_s",
    )

    def __init__(self, target: Target) -> None:
        self.target = target
        self.cause: Cause | None = None
        self.answer: Answer | None = None
        self.live: Response | None = None
        self.head = b""
        self.headers: Mapping[str, str] = {}
        """The answer's headers (a provider's error is mapped from them)."""
        """A live stream's first chunk, read before the stream is committed to."""
        self.error: Fd2Error | None = None
        """The gateway's error when no HTTP answer came (connect failure, timeout)."""
        self.retry_after: float | None = None
        self.ttfb_s = 0.0

    def close(self) -> None:
        """Ends a live stream's attempt (the relay is done with it, or it lost a race)."""
        if self.live is not None:
            self.live.close()
            self.live = None
            self.target.ended()


def request_body(payload: Mapping[str, object], model: str) -> bytes:
    return orjson.dumps({**payload, "model": model})


class Sent:
    """What goes to a target: the URL, headers and body (a provider's call for its targets)."""

    __slots__ = ("body", "headers", "url")

    def __init__(self, url: str, headers: Mapping[str, str], body: bytes) -> None:
        self.url = url
        self.headers = headers
        self.body = body


def outgoing(
    target: Target,
    path: str,
    body: bytes | None,
    payload: Mapping[str, Any],
    request_id: str,
    stream: bool,
) -> Sent:
    """The request for `target`: the OpenAI body as it is (its model replaced), or the call its
    provider builds from it. UnsupportedParameter (the caller's 400) propagates."""
    provider = target.provider
    if provider is None:
        assert body is not None
        return Sent(
            target.base_url + path, {**target.headers[stream], "x-request-id": request_id}, body
        )
    call = provider.chat_call({**payload, "model": target.model}, stream=stream)
    headers = dict(call.headers)
    headers["x-request-id"] = request_id
    return Sent(target.base_url + call.path, headers, call.body or b"")


async def attempt(
    client: Client,
    target: Target,
    path: str,
    body: bytes | None,
    payload: Mapping[str, Any],
    request_id: str,
    *,
    stream: bool,
) -> Tried:
    """Send one attempt; the target's in-flight count is taken here and given back when the
    attempt ends, except for a live stream (the relay gives it back)."""
    tried = Tried(target)
    try:
        sent = outgoing(target, path, body, payload, request_id, stream)
    except UnsupportedParameter as exc:
        tried.error = unsupported(exc)  # the caller's request, not the target: no failure
        return tried
    began = time.monotonic()
    target.started(began)
    response: Response | None = None
    keep = False
    try:
        async with asyncio.timeout(target.timeouts.total_s):
            response = await client.send(sent.url, sent.body, sent.headers, target.timeouts)
            status, headers, raw = client.head(response)
            if stream and _is_stream(target, status, headers.get("content-type")):
                # The first chunk (first token) decides: a stream that breaks or ends before it
                # can still go elsewhere, nothing having reached the client.
                tried.head = await client.first_chunk(response)
                tried.ttfb_s = time.monotonic() - began
                if not tried.head:
                    tried.cause = "5xx"
                    tried.error = UpstreamError("The upstream's stream ended before any event.")
                    return tried
                tried.live, keep = response, True
                return tried
            tried.ttfb_s = time.monotonic() - began
            read = await client.whole(response, ERROR_BODY_LIMIT)
            tried.answer = (status, read, raw)
            tried.headers = headers
            tried.cause = classify(status, read)
            if tried.cause == "429" or (status == 503 and "retry-after" in headers):
                tried.retry_after = retry_after(headers.get("retry-after"))
            return tried
    except Exception as exc:
        failed = client.failure(exc, target.timeouts.total_s)
        if failed is None:
            raise
        tried.cause, tried.error = failed
        return tried
    finally:
        if response is not None and not keep:
            client.close(response)
        if not keep:
            target.ended()


def _is_stream(target: Target, status: int, content_type: str | None) -> bool:
    if target.provider is None:
        return is_event_stream(status, content_type)
    return is_stream_answer(target.provider.framing, status, content_type)


def classify(status: int, body: bytes | None) -> Cause | None:
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx"
    if status == 400 and body is not None:
        if any(marker in body for marker in _CONTEXT_MARKERS):
            return "context_length"
        if any(marker in body for marker in _FILTER_MARKERS):
            return "content_filter"
    return None


def retry_after(value: str | None) -> float:
    """Seconds from a Retry-After (seconds or an HTTP date), bounded; a default without one."""
    if not value:
        return _DEFAULT_COOL_S
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return _DEFAULT_COOL_S
        seconds = when.timestamp() - time.time()
    return max(0.0, min(_MAX_RETRY_AFTER_S, seconds))
