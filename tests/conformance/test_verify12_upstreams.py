"""Hostile upstreams, per provider (issue 12, verified): answers that are not JSON or not the
documented shape, error bodies in HTML, errors quoting the module's key, enormous bodies,
streams with garbage between events or one event of many MB. Every case is a clean error (the
OpenAI shape, a request id, no secret, no stack trace) and a broken stream ends with one error
event. fd2 under Granian, the replay stand-in as the provider."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from e2e.conftest import Service

from .conftest import Replay
from .scenarios import ANSWER, MAX_TOKENS, MODEL, messages
from .verify12_support import (
    PROVIDERS,
    SSE_PROVIDERS,
    TRANSLATED,
    assert_clean_error,
    assert_no_secret,
    assert_one_error_then_end,
    base_url,
    chat_url,
    member_paths,
    replaced,
    secrets_of,
    sse_events,
    sse_text,
    transcript,
    verify_fd2,  # noqa: F401  # the fixture
)

PLAIN = {"model": MODEL, "messages": messages(), "max_tokens": MAX_TOKENS}
STREAM = {**PLAIN, "stream": True, "stream_options": {"include_usage": True}}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0) as client:
        yield client


def _answered(replayer: Replay, provider: str, scenario: str, response: dict[str, Any]) -> None:
    loaded = transcript(provider, scenario)
    loaded["response"] = response
    replayer.load(loaded)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "response",
    [
        {"status": 200, "headers": [["content-type", "text/html"]], "body": "<html>hi</html>"},
        {"status": 200, "json": [1, 2, 3]},
        {"status": 200, "json": "a string"},
        {"status": 200, "body": '{"id": "x", "choices": [', "headers": []},
    ],
    ids=["html", "array", "string", "truncated"],
)
def test_a_200_that_is_not_an_answer_is_a_clean_502(
    provider: str,
    response: dict[str, Any],
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    if provider == "bedrock":
        response = {**response, "headers": [["content-type", "application/json"]]}
    _answered(replayer, provider, "plain", response)
    assert_clean_error(http.post(chat_url(verify_fd2, provider), json=PLAIN), 502)


@pytest.mark.parametrize("provider", [p for p in TRANSLATED if p != "azure"])
def test_every_member_of_an_answer_of_the_wrong_type(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    """Each member of the provider's documented answer, in turn, of a type it must not have:
    the client gets a translated answer or a clean 502, never fd2's 500. (Azure's answers are
    OpenAI's, relayed as a JSON object as the passthrough does.)"""
    loaded = transcript(provider, "plain")
    answer = loaded["response"].get("json")
    assert isinstance(answer, dict)
    seen: dict[int, int] = {}
    for path in member_paths(answer):
        for wrong in (None, 7, "x", [], {"z": 1}, -1.5, True, 1e300, -5):
            _answered(
                replayer,
                provider,
                "plain",
                {**loaded["response"], "json": replaced(answer, path, wrong)},
            )
            response = http.post(chat_url(verify_fd2, provider), json=PLAIN)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code == 200:
                body = response.json()
                assert body["object"] == "chat.completion", (path, wrong)
                assert isinstance(body["choices"], list), (path, wrong)
                continue
            assert response.status_code == 502, (path, wrong, response.text[:300])
            assert_clean_error(response, 502)
    assert seen.get(502), "no mangled answer was refused"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("status", "expected"), [(500, 502), (401, 401), (429, 429), (403, 403)])
def test_an_html_error_quoting_the_key(
    provider: str,
    status: int,
    expected: int,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    secrets = " ".join(secrets_of(provider))
    body = f"<html><body><h1>{status}</h1><pre>key={secrets} at line 3</pre></body></html>"
    for stream in (False, True):
        _answered(
            replayer,
            provider,
            "stream" if stream else "plain",
            {"status": status, "headers": [["content-type", "text/html"]], "body": body},
        )
        response = http.post(chat_url(verify_fd2, provider), json=STREAM if stream else PLAIN)
        error = assert_clean_error(response)
        if provider == "openai":
            # The passthrough relays only OpenAI-shaped errors: anything else is its own 502.
            assert response.status_code == 502
        else:
            assert response.status_code == expected, response.text
        assert "line 3" not in error["message"] or "[REDACTED]" in error["message"]


def _strings_replaced(value: Any, text: str) -> Any:
    if isinstance(value, dict):
        return {k: _strings_replaced(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings_replaced(v, text) for v in value]
    if isinstance(value, str):
        return text
    return value


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("scenario", ["error_400", "error_401", "error_429", "error_5xx"])
def test_a_provider_error_quoting_the_key_is_scrubbed(
    provider: str,
    scenario: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    """The provider's own error shape, every string in it quoting every credential fd2 holds
    (as written, percent-encoded and JSON-escaped)."""
    loaded = transcript(provider, scenario)
    response = loaded["response"]
    secrets = secrets_of(provider)
    quoted = " ".join(
        [*secrets, *(s.replace("-", "%2D") for s in secrets), *(f"Bearer {s}" for s in secrets)]
    )
    if "json" in response:
        response["json"] = _strings_replaced(response["json"], f"Invalid credentials: {quoted}.")
    else:
        response["body"] = f"Invalid credentials: {quoted}."
    replayer.load(loaded)
    answer = http.post(chat_url(verify_fd2, provider), json=PLAIN)
    assert_clean_error(answer)
    if "json" in response:
        # The key JSON-escaped, every character as \\uXXXX, in the raw body.
        escaped = "".join(f"\\u{ord(c):04x}" for c in secrets[0])
        raw = json.dumps(_strings_replaced(loaded["response"].pop("json"), "MARK"))
        loaded["response"]["body"] = raw.replace("MARK", f"bad key {escaped}")
        loaded["response"]["headers"] = [
            *[h for h in loaded["response"].get("headers", []) if h[0].lower() != "content-type"],
            ["content-type", "application/json"],
        ]
        replayer.load(loaded)
        assert_clean_error(http.post(chat_url(verify_fd2, provider), json=PLAIN))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_enormous_error_body(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    big = {"error": {"message": "x" * (3 << 20), "type": "invalid_request_error"}}
    _answered(replayer, provider, "plain", {"status": 400, "json": big})
    response = http.post(chat_url(verify_fd2, provider), json=PLAIN)
    assert_clean_error(response)
    assert response.status_code in (400, 502)


@pytest.mark.parametrize("provider", TRANSLATED)
def test_an_enormous_answer_is_translated(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    """An 8 MB answer text (within the success bound): translated whole."""
    loaded = transcript(provider, "plain")
    text = json.dumps(loaded["response"]["json"])
    big = "Paris " * (8 << 17)
    loaded["response"]["json"] = json.loads(text.replace(ANSWER, big))
    replayer.load(loaded)
    response = http.post(chat_url(verify_fd2, provider), json=PLAIN)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["choices"][0]["message"]["content"] == big


def _stream_body(provider: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    loaded = transcript(provider, "stream")
    return loaded, list(loaded["response"]["events"])


@pytest.mark.parametrize("provider", SSE_PROVIDERS)
def test_garbage_lines_between_events_are_ignored(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    """Lines that are no SSE field, comments and unknown fields are ignored by the event-stream
    rules: the SDK gets the whole answer."""
    loaded, events = _stream_body(provider)
    garbage = b"garbage without colon\nretry: soon\n: a comment\nwhat: ever\n\n"
    body = b"".join(sse_text([event]) + garbage for event in events)
    loaded["response"] = {
        "status": 200,
        "headers": [["content-type", "text/event-stream"]],
        "body": body.decode(),
        "split_every": 5,
    }
    replayer.load(loaded)
    client = openai.OpenAI(base_url=base_url(verify_fd2, provider), api_key="x", max_retries=0)
    with client:
        if provider == "openai":
            # The passthrough checks a stream's first events (not an OpenAI stream: not
            # relayed); garbage read together with the first event is refused, cleanly.
            try:
                chunks = list(
                    client.chat.completions.create(
                        model=MODEL,
                        messages=messages(),  # type: ignore[arg-type]
                        max_tokens=MAX_TOKENS,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                )
            except openai.APIError as refused:
                assert "not an OpenAI event stream" in refused.message
                return
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
            return
        chunks = list(
            client.chat.completions.create(
                model=MODEL,
                messages=messages(),  # type: ignore[arg-type]
                max_tokens=MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    assert chunks[-1].usage is not None


@pytest.mark.parametrize("provider", [p for p in TRANSLATED if p != "bedrock"])
@pytest.mark.parametrize(
    "bad",
    [
        "data: <html>oops</html>\n\n",
        "data: [1, 2]\n\n",
        'data: {"type": 7, "choices": 7, "candidates": 7}\n\n',
        "data: null\n\n",
    ],
    ids=["html", "array", "wrong-types", "null"],
)
def test_an_untranslatable_event_mid_stream(
    provider: str,
    bad: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded, events = _stream_body(provider)
    head = sse_text(events[:2]).decode()
    tail = sse_text(events[2:]).decode()
    if provider == "anthropic":  # Anthropic names its events: a named one, of a known kind
        bad = "event: content_block_delta\n" + bad
    loaded["response"] = {
        "status": 200,
        "headers": [["content-type", "text/event-stream"]],
        "body": head + bad + tail,
        "split_every": 11,
    }
    replayer.load(loaded)
    response = http.post(chat_url(verify_fd2, provider), json=STREAM)
    assert response.status_code == 200
    events_seen = sse_events(response.content)
    if "[DONE]" in events_seen:  # an event the translator rightly ignores (unknown kind)
        assert events_seen[-1] == "[DONE]"
        assert_no_secret(response.content)
        return
    assert_one_error_then_end(response.content)


@pytest.mark.parametrize("provider", SSE_PROVIDERS)
def test_an_event_of_many_megabytes(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    """One `data:` line of 20 MB (over the 16 MiB event bound) after the first events: one
    error event, then the end; the gateway stays up."""
    loaded, events = _stream_body(provider)
    head = sse_text(events[:2]).decode()
    loaded["response"] = {
        "status": 200,
        "headers": [["content-type", "text/event-stream"]],
        "body": head + "data: " + "x" * (20 << 20) + "\n\n" + sse_text(events[2:]).decode(),
        "split_every": 1 << 20,
        "gap_s": 0,
    }
    replayer.load(loaded)
    response = http.post(chat_url(verify_fd2, provider), json=STREAM)
    if provider == "openai":
        # The passthrough relays as it reads: the error event comes after what was relayed.
        assert response.status_code == 200
        assert b"[DONE]" not in response.content
        assert_no_secret(response.content)
    else:
        assert response.status_code in (200, 502)
        if response.status_code == 200:
            assert_one_error_then_end(response.content)
        else:
            assert_clean_error(response, 502)
    replayer.load(transcript(provider, "plain"))
    assert http.post(chat_url(verify_fd2, provider), json=PLAIN).status_code == 200


@pytest.mark.parametrize(
    "garbage",
    [b"\x00" * 64, b"not an event stream frame at all, just text......", b"\xff" * 16],
    ids=["zeros", "text", "ff"],
)
def test_bedrock_stream_with_garbage_between_frames(
    garbage: bytes,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded = transcript("bedrock", "stream")
    frames = base64.b64decode(loaded["response"]["body_b64"])
    # The first frame's total length is its prelude's first 4 bytes (big-endian).
    first = int.from_bytes(frames[:4], "big")
    second = first + int.from_bytes(frames[first : first + 4], "big")
    body = frames[:second] + garbage + frames[second:]
    loaded["response"]["body_b64"] = base64.b64encode(body).decode()
    replayer.load(loaded)
    response = http.post(chat_url(verify_fd2, "bedrock"), json=STREAM)
    if response.status_code != 200:
        assert_clean_error(response)
        return
    assert_one_error_then_end(response.content)


def test_bedrock_frame_announcing_a_huge_length(
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded = transcript("bedrock", "stream")
    frames = base64.b64decode(loaded["response"]["body_b64"])
    first = int.from_bytes(frames[:4], "big")
    huge = (1 << 31).to_bytes(4, "big") + b"\x00" * 8
    loaded["response"]["body_b64"] = base64.b64encode(frames[:first] + huge).decode()
    replayer.load(loaded)
    response = http.post(chat_url(verify_fd2, "bedrock"), json=STREAM)
    if response.status_code != 200:
        assert_clean_error(response)
        return
    assert_one_error_then_end(response.content)
