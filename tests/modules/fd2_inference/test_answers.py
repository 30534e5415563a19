"""Pure decisions on upstream answers: relay, pass an error through, or answer 502/504."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from aiohttp.client_reqrep import ConnectionKey

from fd2.serving.errors import BadRequest, UpstreamError, UpstreamTimeout
from fd2.telemetry.scrub import Scrubber
from fd2_inference.answers import (
    gateway_error,
    is_event_stream,
    relayed_error_status,
    relayed_headers,
    settle,
    sse_error_event,
)

OPENAI_ERROR = b'{"error": {"message": "Rate limit", "type": "rate_limit", "code": null}}'


def test_success_bodies_are_relayed_unchanged() -> None:
    body = b'{"id": "x",  "data": [[0.1, 0.2]]}'
    status, relayed, usage = settle(201, body)
    assert (status, relayed, usage) == (201, body, None)
    assert relayed is body


def test_the_usage_member_is_found_in_the_same_pass() -> None:
    body = b'{"data": [[0.1]], "usage": {"prompt_tokens": 3, "total_tokens": 3}}'
    assert settle(200, body)[2] == b'{"prompt_tokens": 3, "total_tokens": 3}'
    assert settle(200, b'{"usage": null}')[2] == b"null"
    assert settle(200, b' {"a": [1, {"b": null}]} ')[2] is None


@pytest.mark.parametrize(
    "body",
    [b"[1]", b"not json", b"", b'{"a": 1', b'"s"', b'{"a": [1, }', b'{"a": 1} trailing', None],
)
def test_success_status_without_a_json_object_is_502(body: bytes | None) -> None:
    with pytest.raises(UpstreamError) as caught:
        settle(200, body)
    assert caught.value.status == 502


@pytest.mark.parametrize(
    ("status", "relayed"), [(400, 400), (401, 401), (404, 404), (429, 429), (500, 502), (503, 503)]
)
def test_openai_errors_pass_through(status: int, relayed: int) -> None:
    assert settle(status, OPENAI_ERROR, Scrubber(["sk-unrelated"])) == (relayed, OPENAI_ERROR, None)


def test_openai_errors_pass_through_without_the_credentials_sent() -> None:
    body = orjson.dumps(
        {"error": {"message": "bad key: Bearer sk-live-123", "type": "auth", "code": None}}
    )
    status, relayed, usage = settle(401, body, Scrubber(["sk-live-123"]))
    assert (status, usage) == (401, None)
    assert orjson.loads(relayed)["error"]["message"] == "bad key: Bearer ***"


def test_an_error_that_cannot_be_scrubbed_is_not_relayed() -> None:
    with pytest.raises(UpstreamError, match="HTTP 401"):
        settle(401, OPENAI_ERROR)  # no scrubber: nothing is relayed unchecked
    nested = b'{"error": {"message": "\\u0073k", "deep": ' + b"[" * 2000 + b"]" * 2000 + b"}}"
    with pytest.raises(UpstreamError, match="HTTP 401"):
        settle(401, nested, Scrubber(["sk-live-123"]))


@pytest.mark.parametrize(
    "body",
    [b"<html>Bad Gateway</html>", b'{"error": "oops"}', b'{"detail": "x"}', b"[]", b"", None],
)
def test_other_failures_are_502_naming_only_the_status(body: bytes | None) -> None:
    with pytest.raises(UpstreamError) as caught:
        settle(500, body)
    assert caught.value.message == "The upstream answered HTTP 500."


def test_a_body_nested_deeper_than_a_decoder_goes_is_502() -> None:
    with pytest.raises(UpstreamError):
        settle(200, b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}")


def test_relayed_headers_keep_rate_limits_and_processing_time() -> None:
    raw = [
        (b"Content-Type", b"application/json"),
        (b"X-RateLimit-Remaining-Requests", b"99"),
        (b"x-ratelimit-reset-tokens", b"6ms"),
        (b"openai-processing-ms", b"42"),
        (b"set-cookie", b"a=b"),
        (b"x-request-id", b"upstream-id"),
    ]
    assert relayed_headers(raw) == [
        (b"x-ratelimit-remaining-requests", b"99"),
        (b"x-ratelimit-reset-tokens", b"6ms"),
        (b"openai-processing-ms", b"42"),
    ]


@pytest.mark.parametrize(
    ("status", "content_type", "expected"),
    [
        (200, "text/event-stream", True),
        (200, "text/event-stream; charset=utf-8", True),
        (200, "Text/Event-Stream", True),
        (200, "application/json", False),
        (200, None, False),
        (201, "text/event-stream", False),
        (429, "text/event-stream", False),
    ],
)
def test_is_event_stream(status: int, content_type: str | None, expected: bool) -> None:
    assert is_event_stream(status, content_type) is expected


_KEY = ConnectionKey("user:pw@h", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            aiohttp.ConnectionTimeoutError("Connection timeout to host http://user:pw@h"),
            UpstreamTimeout,
        ),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), UpstreamTimeout),
        (aiohttp.ServerTimeoutError("t"), UpstreamTimeout),
        (TimeoutError(), UpstreamTimeout),
        (aiohttp.ClientConnectorError(_KEY, ConnectionRefusedError(111, "refused")), UpstreamError),
        (aiohttp.ClientConnectorDNSError(_KEY, OSError(-2, "no such host")), UpstreamError),
        (aiohttp.ServerDisconnectedError("peer closed http://user:pw@h"), UpstreamError),
        (aiohttp.ClientPayloadError("Response payload is not completed: pw"), UpstreamError),
        (aiohttp.ClientOSError(104, "reset by http://user:pw@h"), UpstreamError),
        (aiohttp.InvalidURL("http://user:pw@h"), UpstreamError),
    ],
)
def test_gateway_errors(exc: Exception, kind: type[Exception]) -> None:
    error = gateway_error(exc, 300)
    assert type(error) is kind
    assert error is not None
    assert "pw" not in error.message


def test_gateway_error_leaves_other_exceptions_alone() -> None:
    assert gateway_error(ValueError("bug"), 1) is None
    bad = BadRequest("x")
    assert gateway_error(bad, 1) is bad
    assert "2.5 s" in (gateway_error(TimeoutError(), 2.5) or BadRequest("")).message


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (aiohttp.ConnectionTimeoutError(), "connecting"),
        (aiohttp.SocketTimeoutError(), "read timeout"),
        (TimeoutError(), "time limit of 300 s"),
    ],
)
def test_timeouts_are_told_apart(exc: Exception, words: str) -> None:
    # aiohttp's timeouts are TimeoutErrors too; only a bare one is the whole-call limit.
    error = gateway_error(exc, 300)
    assert error is not None
    assert words in error.message


def test_sse_error_event_is_one_openai_error_event() -> None:
    event = sse_error_event(UpstreamTimeout("slow"))
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert event.count(b"\n") == 2
    assert orjson.loads(event[6:]) == {
        "error": {
            "message": "slow",
            "type": "upstream_error",
            "code": "gateway_timeout",
            "param": None,
        }
    }


def test_an_upstream_5xx_is_relayed_as_a_bad_gateway_but_busy_and_slow_keep_their_status() -> None:
    assert [relayed_error_status(s) for s in (400, 401, 404, 413, 429)] == [400, 401, 404, 413, 429]
    assert [relayed_error_status(s) for s in (500, 501, 502, 503, 504, 529)] == [
        502, 502, 502, 503, 504, 502,
    ]  # fmt: skip


def test_a_relayed_header_that_looks_like_a_credential_is_left_out() -> None:
    raw = [
        (b"x-ratelimit-limit-requests", b"10000"),
        (b"x-ratelimit-reset-tokens", b"6m0s"),
        (b"retry-after", b"Wed, 21 Oct 2026 07:28:00 GMT"),
        (b"x-ratelimit-key", b"sk-live-0123456789abcdefghij"),  # an upstream echoing its key
        (b"x-ratelimit-note", b"Bearer abcdefABCDEF0123456789"),
    ]
    assert relayed_headers(raw) == raw[:3]
