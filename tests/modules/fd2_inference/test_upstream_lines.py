"""The header lines an Upstream renders once for the pooled client: the same bytes the client
would render from the call's headers, and never a line break smuggled in."""

from __future__ import annotations

from unittest.mock import sentinel

from fd2.http_client import header_lines
from fd2.module import Timeouts
from fd2_inference.upstream import Upstream


def _upstream(api_key: str | None) -> Upstream:
    # The session is never used by `build` (nothing is sent here).
    return Upstream(sentinel.session, "http://127.0.0.1:9/v1", api_key, Timeouts())


def test_prebuilt_lines_are_the_calls_headers_rendered() -> None:
    upstream = _upstream("sk-up")
    for stream in (False, True):
        for body in (None, b"{}"):
            call = upstream.build("POST", "/chat", body, request_id="r-1", stream=stream)
            assert isinstance(call.headers, dict)
            assert call.lines == header_lines(call.headers.items())
            assert call.lines.endswith(b"x-request-id: r-1\r\n")


def test_a_request_id_with_a_line_break_gets_no_prebuilt_lines() -> None:
    """The client then renders the headers itself, and refuses them (ValueError)."""
    call = _upstream("sk-up").build("POST", "/chat", b"{}", request_id="a\r\nx: y", stream=False)
    assert call.lines is None


def test_a_key_with_a_line_break_is_left_to_the_client_to_refuse() -> None:
    call = _upstream("sk-up\r\nx-evil: 1").build(
        "GET", "/models", None, request_id="r", stream=False
    )
    assert call.lines is None
    assert call.headers["authorization"] == "Bearer sk-up\r\nx-evil: 1"
