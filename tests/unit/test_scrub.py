"""fd2.telemetry.scrub: the credentials fd2 sent upstream never come back to a client."""

from __future__ import annotations

import base64
import json

import orjson
import pytest

from fd2.telemetry.scrub import Scrubber, credential_values

KEY = "sk-live/Abc&<12>"


def message(body: bytes) -> str:
    return str(orjson.loads(body)["error"]["message"])


@pytest.mark.parametrize(
    "encode",
    [
        lambda value: orjson.dumps(value),
        lambda value: json.dumps(value).encode(),  # non-ASCII escaped
        lambda value: json.dumps(value).replace("/", "\\/").encode(),  # PHP-style
        lambda value: json.dumps(value).replace("<", "\\u003c").replace("&", "\\u0026").encode(),
        lambda value: json.dumps(value).replace("s", "\\u0073").encode(),  # escapes anywhere
    ],
    ids=["orjson", "ascii", "slash", "go-html", "every-s"],
)
def test_a_quoted_key_is_taken_out_however_the_json_escapes_it(encode: object) -> None:
    body = encode({"error": {"message": f"bad key: Bearer {KEY} (é)", "type": "auth"}})  # type: ignore[operator]
    scrubbed = Scrubber([KEY]).json(body)
    assert scrubbed is not None
    assert message(scrubbed) == "bad key: Bearer *** (é)"
    assert orjson.loads(scrubbed)["error"]["type"] == "auth"


def test_names_and_nested_values_are_scrubbed_too() -> None:
    body = orjson.dumps({"error": {"message": "no", KEY: [{"k": f"x{KEY}x"}]}})
    scrubbed = Scrubber([KEY]).json(body)
    assert scrubbed is not None
    assert orjson.loads(scrubbed) == {"error": {"message": "no", "***": [{"k": "x***x"}]}}


def test_a_body_without_a_secret_is_returned_as_it_was() -> None:
    body = b'{"error": {"message": "say \\"please\\"", "type": "x"}}'
    assert Scrubber([KEY]).json(body) == body


@pytest.mark.parametrize(
    "quoted",
    ["sk-live%2FAbc%26%3C12%3E", "sk-live/Abc%26%3c12%3e", "%73k-live/Abc&<12>"],
)
def test_url_encoded_forms_are_scrubbed(quoted: str) -> None:
    body = orjson.dumps({"error": {"message": f"GET /v1?key={quoted} failed"}})
    scrubbed = Scrubber([KEY]).json(body)
    assert scrubbed is not None
    assert message(scrubbed) == "GET /v1?key=*** failed"
    assert Scrubber(["a b c d"]).text("x=a+b%20c d") == "x=***"


def test_keys_beyond_the_basic_plane_are_found_escaped() -> None:
    key = "key-\U0001f511-value"
    body = json.dumps({"error": {"message": key}}).encode()  # a surrogate pair escape
    assert b"\\ud83d\\udd11" in body
    scrubbed = Scrubber([key]).json(body)
    assert scrubbed is not None
    assert message(scrubbed) == "***"


def test_what_cannot_be_decoded_with_certainty_is_refused() -> None:
    deep = b'{"error": {"message": "\\n", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}}"
    assert Scrubber([KEY]).json(deep) is None
    assert Scrubber([KEY]).json(b'{"error": "\\u0073k-li') is None


def test_short_values_are_no_secrets() -> None:
    scrubber = Scrubber(["abc", ""])
    assert not scrubber
    body = b'{"error": {"message": "abc"}}'
    assert scrubber.json(body) == body


def test_server_sent_events_keep_their_framing() -> None:
    events = (
        b"event: error\r\n"
        b'data: {"error": {"message": "Bearer \\u0073k-live\\/Abc&<12>"}}\r\n\r\n'
        b": note " + KEY.encode() + b"\n"
        b"data: not json " + KEY.encode() + b"\n\n"
    )
    assert Scrubber([KEY]).events(events) == (
        b"event: error\r\n"
        b'data: {"error": {"message": "Bearer ***"}}\r\n\r\n'
        b": note ***\n"
        b"data: not json ***\n\n"
    )


def test_credential_headers_give_their_tokens() -> None:
    basic = base64.b64encode(b"user:pass-word").decode()
    headers = {
        "Authorization": "Bearer sk-1234",
        "x-api-key": "xk-5678",
        "api-key": "ak-9012",
        "proxy-authorization": f"Basic {basic}",
        "accept": "text/event-stream",
        "x-request-id": "req-1",
    }
    assert credential_values(headers) == [
        "sk-1234",
        "xk-5678",
        "ak-9012",
        basic,
        "user:pass-word",
        "pass-word",
    ]
    assert credential_values([("authorization", "opaque-token")]) == ["opaque-token"]
