"""nginx-style variables in header values: parsed at compile time, filled per request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.control.gateway.route import Variable
from fd2.control.gateway.variables import has_variables, parse_text, render, static_text
from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2.serving.request import Request


def request(headers: Sequence[tuple[bytes, bytes]] = (), query: bytes = b"") -> Request:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/p/m/v1/chat/completions",
        "headers": list(headers),
        "query_string": query,
        "client": ("10.1.2.3", 55555),
    }
    return Request(
        scope,
        receive,
        request_id="req-42",
        project="p",
        module="m",
        environment="dev",
        path="/v1/chat/completions",
        content_length=0,
        max_body=1024,
    )


def test_every_supported_variable_is_filled_from_the_request() -> None:
    parts = parse_text(
        "h=$http_x_user a=${arg_team} ip=$remote_addr id=$request_id m=$request_method", "t"
    )
    assert has_variables(parts)
    filled = render(parts, request([(b"x-user", b"ann")], b"team=blue&x=1"))
    assert filled == "h=ann a=blue ip=10.1.2.3 id=req-42 m=POST"


def test_absent_headers_and_arguments_are_empty() -> None:
    parts = parse_text("[$http_x_missing][$arg_missing]", "t")
    assert render(parts, request()) == "[][]"


def test_literal_text_and_secrets_need_no_request() -> None:
    secret = Secret("sk-1", "env:K")
    assert parse_text(secret, "t") == (secret,)
    assert not has_variables((secret,))
    assert static_text(("Bearer ", secret)) == "Bearer sk-1"
    assert parse_text("costs \\$5", "t") == ("costs $5",)


def test_regex_groups_are_filled_at_compile_time() -> None:
    assert parse_text("$1-${2}-$3", "t", ("a", "b")) == ("a-b-",)


def test_groups_without_regex_uri_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"\$1"):
        parse_text("$1", "t")


def test_header_names_are_normalised() -> None:
    assert parse_text("$http_X_Groq_Api_Key", "t") == (Variable("http", "x-groq-api-key"),)


@given(st.text(alphabet=st.characters(blacklist_characters="$\\"), max_size=40))
def test_text_without_dollars_is_kept_as_is(text: str) -> None:
    parts = parse_text(text, "t")
    assert static_text(parts) == text
    assert not has_variables(parts)
