"""Pure decisions about upstream answers: what to relay, what becomes a gateway error.

Upstream bodies and URLs never reach a gateway error message: the upstream may echo request
content or credentials, and a client should see either the upstream's own OpenAI-shaped error
(relayed with the credentials fd2 sent taken out, `fd2.telemetry.scrub`) or a gateway message
that names
only the HTTP status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import aiohttp
import msgspec
import orjson

from fd2.http_client import ClientError, ConnectFailed, ConnectTimeout, ReadTimeout
from fd2.serving.errors import (
    BadRequest,
    Fd2Error,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
    render_error,
)
from fd2.telemetry.scrub import Scrubber
from fd2_inference.providers.base import ProviderFailure, UnsupportedParameter

Headers = list[tuple[bytes, bytes]]

ERROR_BODY_LIMIT: Final = 1 << 20
"""Most bytes read of an answer that is not a success (error bodies are small)."""

_RELAYED_PREFIX: Final = b"x-ratelimit-"
# `retry-after` (and OpenAI's `retry-after-ms`) tell a client of a 429 or 503 when to come back.
_RELAYED_NAMES: Final = frozenset({b"openai-processing-ms", b"retry-after", b"retry-after-ms"})


class _Answer(msgspec.Struct):
    usage: msgspec.Raw = msgspec.Raw()


# Checks "is a JSON object" and finds its `usage` member in one pass, without building Python
# objects for the other values: success bodies can be megabytes of embeddings.
_ANSWER: Final = msgspec.json.Decoder(_Answer)


_TOKEN_LIKE: Final = re.compile(rb"(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,}")
"""A run of 16 or more token characters with a letter in it: how an API key looks, and never
how a rate limit, a reset time (`6m0s`, RFC 3339) or a `Retry-After` (seconds, HTTP date) does."""


def relayed_headers(raw: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The upstream response headers a client should see (rate limits, processing time). A
    value that looks like a credential is not relayed: an upstream that echoes the key it was
    sent into a header (a misconfigured proxy) must not hand it to the client."""
    relayed: Headers = []
    for name, value in raw:
        lower = name.lower()
        if (lower.startswith(_RELAYED_PREFIX) or lower in _RELAYED_NAMES) and not (
            _TOKEN_LIKE.search(value)
        ):
            relayed.append((lower, value))
    return relayed


def settle(
    status: int, body: bytes | None, scrubber: Scrubber | None = None
) -> tuple[int, bytes, bytes | None]:
    """The (status, JSON body, its raw `usage` member) to answer a non-streaming call with;
    raises UpstreamError otherwise.

    `body` is None when an answer was too large to read in full. An error relayed has every
    secret `scrubber` knows taken out; one that cannot be scrubbed with certainty (or with no
    scrubber) is not relayed.
    """
    if 200 <= status < 300:
        if body is None:
            raise UpstreamError(
                f"The upstream answered HTTP {status} with a body too large to relay."
            )
        try:
            answer = _ANSWER.decode(body)
        except (msgspec.DecodeError, RecursionError):  # nested deeper than a decoder goes
            raise UpstreamError(
                f"The upstream answered HTTP {status} with a body that is not a JSON object."
            ) from None
        return status, body, bytes(answer.usage) or None
    if body is not None and scrubber is not None and is_openai_error(body):
        scrubbed = scrubber.json(body)
        if scrubbed is not None:
            return relayed_error_status(status), scrubbed, None
    raise UpstreamError(f"The upstream answered HTTP {status}.")


def relayed_error_status(status: int) -> int:
    """The status an upstream's error answer is relayed with: its own for a 4xx (the client's
    request was at fault, and the SDKs act on 400/401/403/404/413/429), and for 503 and 504 (try
    again later; too slow), else 502 for a 5xx — the gateway is fine, its upstream failed."""
    if status < 500 or status in (503, 504):
        return status
    return 502


def is_openai_error(body: bytes) -> bool:
    """Whether `body` is an OpenAI error: a JSON object whose "error" is an object."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and isinstance(value.get("error"), dict)


def is_event_stream(status: int, content_type: str | None) -> bool:
    if status != 200 or content_type is None:
        return False
    if content_type == "text/event-stream":  # as the pooled answer gives it: nothing to cut
        return True
    return content_type.partition(";")[0].strip().lower() == "text/event-stream"


def gateway_error(exc: BaseException, total_s: float) -> Fd2Error | None:
    """The gateway error for a failed upstream exchange, or None when `exc` is not one."""
    if isinstance(exc, Fd2Error):
        return exc
    # aiohttp's phase timeouts subclass TimeoutError, so they are told apart from the whole-call
    # limit (asyncio.timeout's bare TimeoutError) first.
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return UpstreamTimeout(_TIMEOUT_MESSAGES.get(type(exc), "The upstream timed out."))
    if isinstance(exc, ClientError):  # fd2.http_client's, told apart like aiohttp's
        return _pooled_client_error(exc)
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"The upstream call exceeded its time limit of {total_s:g} s.")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("The upstream could not be reached (connection failed).")
    if isinstance(exc, aiohttp.ClientError):
        # The exception's text can name hosts, paths or body fragments; its type is enough.
        return UpstreamError(f"The upstream connection failed ({type(exc).__name__}).")
    return None


def _pooled_client_error(exc: ClientError) -> Fd2Error:
    if isinstance(exc, ConnectTimeout):
        return UpstreamTimeout(_TIMEOUT_MESSAGES[aiohttp.ConnectionTimeoutError])
    if isinstance(exc, ReadTimeout):
        return UpstreamTimeout(_TIMEOUT_MESSAGES[aiohttp.SocketTimeoutError])
    if isinstance(exc, ConnectFailed):
        return UpstreamError("The upstream could not be reached (connection failed).")
    return UpstreamError(f"The upstream connection failed ({type(exc).__name__}).")


def shutting_down() -> ServiceUnavailable:
    """What a request still waiting on its upstream gets at the shutdown deadline."""
    return ServiceUnavailable(
        "The gateway is shutting down and ended this request before the upstream had answered "
        "it in full; send it again.",
        code="gateway_shutting_down",
    )


DONE_EVENT: Final = b"data: [DONE]\n\n"

_BOM: Final = b"\xef\xbb\xbf"
_FIELDS: Final = frozenset({b"data", b"event", b"id", b"retry"})
_ONE_EVENT: Final = (b"data: {", b"data:{")


def looks_like_events(out: bytes, *, first: bool) -> bool | None:
    """Whether whole events from an upstream look like an OpenAI event stream: False at the
    first line that is no event-stream field or comment, or at an event whose data is neither a
    JSON object nor `[DONE]`; True once such an event has been seen; None when `out` holds only
    comments and fields without data (keep-alives). `first`: `out` starts the stream.

    Any bytes are an event stream to a browser (unknown lines are ignored), so a page of HTML or
    a bare JSON body would be relayed as one; checked on a stream's first events only.
    """
    if out.startswith(_ONE_EVENT) and out.find(b"\n") == len(out) - 2 and out.endswith(b"\n\n"):
        return True  # the usual first read: one `data: {...}` event
    if first and out.startswith(_BOM):
        out = out[len(_BOM) :]
    seen = False
    in_data = False
    for line in out.splitlines():
        if not line:
            in_data = False
            continue
        if line[0] == 0x3A:  # ":" a comment
            continue
        name, _, value = line.partition(b":")
        if name not in _FIELDS:
            return False
        if name == b"data" and not in_data:  # an event's first data line
            in_data = True
            value = value.strip()
            if not (value.startswith(b"{") or value == b"[DONE]"):
                return False
            seen = True
    return True if seen else None


def sse_error_event(error: Fd2Error) -> bytes:
    """One SSE event carrying an OpenAI error; the OpenAI SDKs raise when a stream yields it."""
    return b"data: " + render_error(error) + b"\n\n"


_TIMEOUT_MESSAGES: Final[dict[type[Exception], str]] = {
    aiohttp.ConnectionTimeoutError: (
        "Timed out connecting to the upstream (or waiting for a free connection)."
    ),
    aiohttp.SocketTimeoutError: "The upstream stopped sending data (read timeout).",
}


class ProviderError(Fd2Error):
    """A translated provider's error answer, in OpenAI's terms (`ProviderFailure`): its status,
    type, code and the headers a client needs (`retry-after`, rate limits) passed through."""

    def __init__(self, failure: ProviderFailure, scrubber: Scrubber | None = None) -> None:
        # Everything taken from the provider's answer is scrubbed, not only the message: an
        # upstream may quote the key in its error code or a header it sends back.
        def clean(text: str) -> str:
            return scrubber.text(text) if scrubber is not None else text

        code = clean(failure.code) if failure.code is not None else None
        super().__init__(clean(failure.message), code=code)
        # Per instance: the status and type are the provider's, mapped.
        self.status = failure.status  # type: ignore[misc]
        self.error_type = failure.type  # type: ignore[misc]
        if code is None:
            self.code = None  # type: ignore[misc]
        self._headers = [
            (name.lower().encode("latin-1"), clean(value).encode("latin-1"))
            for name, value in failure.headers
        ]

    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers


def unsupported(exc: UnsupportedParameter) -> BadRequest:
    """The 400 for a parameter the provider cannot honour (the `refuse` policy)."""
    return BadRequest(str(exc) + ".", param=exc.param, code="unsupported_parameter")


def untranslatable(provider: str, what: str) -> UpstreamError:
    """A provider answer that could not be translated (not the shape its reference gives)."""
    return UpstreamError(
        f"The answer of provider {provider!r} could not be translated ({what}).",
        code="upstream_untranslatable",
    )
