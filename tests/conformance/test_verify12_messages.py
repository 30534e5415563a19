"""The inbound Messages API (`/v1/messages`) under hostile upstreams and clients, over every
provider (issue 12, verified): every failure is Anthropic-shaped with a request id, no secret
and no stack trace; a stream that breaks after it started ends with one `error` event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from e2e.conftest import Service

from .conftest import Replay
from .scenarios import MAX_TOKENS, MODEL, QUESTION, SYSTEM
from .verify12_support import (
    PROVIDERS,
    TRANSLATED,
    assert_clean_error,
    assert_no_secret,
    chat_url,
    secrets_of,
    sse_text,
    transcript,
    verify_fd2,  # noqa: F401  # the fixture
)

ASK = {
    "model": MODEL,
    "max_tokens": MAX_TOKENS,
    "system": SYSTEM,
    "messages": [{"role": "user", "content": QUESTION}],
}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0, headers={"anthropic-version": "2023-06-01"}) as client:
        yield client


def _messages(fd2: Service, provider: str) -> str:
    return chat_url(fd2, provider, "/v1/messages")


def _answered(replayer: Replay, provider: str, scenario: str, response: dict[str, Any]) -> None:
    loaded = transcript(provider, scenario)
    loaded["response"] = response
    replayer.load(loaded)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("status", "expected"), [(200, 502), (401, 401), (500, 502), (429, 429)])
def test_html_answers_quoting_the_key(
    provider: str,
    stream: bool,
    status: int,
    expected: int,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    body = f"<html><body>no: {' '.join(secrets_of(provider))}</body></html>"
    _answered(
        replayer,
        provider,
        "stream" if stream else "plain",
        {"status": status, "headers": [["content-type", "text/html"]], "body": body},
    )
    response = http.post(_messages(verify_fd2, provider), json={**ASK, "stream": stream})
    error = assert_clean_error(response, anthropic=True)
    if provider != "openai" or status == 200:
        assert response.status_code == expected, response.text
    assert error["type"] in {
        "api_error",
        "authentication_error",
        "rate_limit_error",
        "invalid_request_error",
    }


def _anthropic_events(content: bytes) -> list[tuple[str | None, Any]]:
    out: list[tuple[str | None, Any]] = []
    for block in content.replace(b"\r\n", b"\n").split(b"\n\n"):
        name = None
        data = []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if data:
            out.append((name, json.loads(b"\n".join(data))))
    return out


@pytest.mark.parametrize("provider", [p for p in TRANSLATED if p != "bedrock"])
def test_an_untranslatable_event_mid_stream_is_one_error_event(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded = transcript(provider, "stream")
    events = loaded["response"]["events"]
    bad = "data: <html>oops</html>\n\n"
    if provider == "anthropic":
        bad = "event: content_block_delta\n" + bad
    loaded["response"] = {
        "status": 200,
        "headers": [["content-type", "text/event-stream"]],
        "body": sse_text(events[:3]).decode() + bad + sse_text(events[3:]).decode(),
        "split_every": 9,
    }
    replayer.load(loaded)
    response = http.post(_messages(verify_fd2, provider), json={**ASK, "stream": True})
    assert_no_secret(response.content)
    if response.status_code != 200:  # broke before the first event reached the client
        assert_clean_error(response, anthropic=True)
        return
    seen = _anthropic_events(response.content)
    errors = [e for e in seen if e[0] == "error"]
    assert len(errors) == 1, seen[-4:]
    assert seen[-1] == errors[0], seen[-3:]
    assert errors[0][1]["type"] == "error" and errors[0][1]["error"]["message"]
    assert "message_stop" not in [name for name, _ in seen]


HOSTILE: dict[str, dict[str, Any]] = {
    "content-int": {**ASK, "messages": [{"role": "user", "content": 7}]},
    "block-int": {**ASK, "messages": [{"role": "user", "content": [7]}]},
    "text-int": {**ASK, "messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
    "image-bad-base64": {
        **ASK,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "@@@"},
                    }
                ],
            }
        ],
    },
    "image-bad-media-type": {
        **ASK,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "text/html", "data": "AAAA"},
                    }
                ],
            }
        ],
    },
    "image-source-string": {
        **ASK,
        "messages": [{"role": "user", "content": [{"type": "image", "source": "x"}]}],
    },
    "system-int": {**ASK, "system": 7},
    "system-blocks-of-int": {**ASK, "system": [7]},
    "max-tokens-missing": {k: v for k, v in ASK.items() if k != "max_tokens"},
    "max-tokens-negative": {**ASK, "max_tokens": -1},
    "max-tokens-huge": {**ASK, "max_tokens": 10**30},
    "role-system": {**ASK, "messages": [{"role": "system", "content": "hi"}]},
    "messages-object": {**ASK, "messages": {"role": "user"}},
    "tools-int": {**ASK, "tools": [7]},
    "tool-choice-unknown": {**ASK, "tool_choice": {"type": "wizard"}},
    "tool-use-input-string": {
        **ASK,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "x"}],
            },
        ],
    },
    "tool-result-content-int": {
        **ASK,
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 7}]}
        ],
    },
    "stop-sequences-string": {**ASK, "stop_sequences": "END"},
    "metadata-int": {**ASK, "metadata": 7},
    "stream-string": {**ASK, "stream": "yes"},
    "model-path": {**ASK, "model": "../../x?y#z"},
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_messages_request(
    provider: str,
    case: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    replayer.load(transcript(provider, "plain"))
    response = http.post(_messages(verify_fd2, provider), json=HOSTILE[case])
    if response.status_code == 200:
        assert response.json()["type"] == "message"
        return
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text[:300])
    assert_clean_error(response, anthropic=True)


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "bedrock"])
def test_an_event_of_many_megabytes_is_one_error_event(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded = transcript(provider, "stream")
    events = loaded["response"]["events"]
    loaded["response"] = {
        "status": 200,
        "headers": [["content-type", "text/event-stream"]],
        "body": sse_text(events[:3]).decode() + "data: " + "x" * (20 << 20) + "\n\n",
        "split_every": 1 << 20,
        "gap_s": 0,
    }
    replayer.load(loaded)
    response = http.post(_messages(verify_fd2, provider), json={**ASK, "stream": True})
    if response.status_code != 200:
        assert_clean_error(response, anthropic=True)
        return
    seen = _anthropic_events(response.content)
    assert [name for name, _ in seen].count("error") == 1, seen[-3:]
    assert seen[-1][0] == "error"
