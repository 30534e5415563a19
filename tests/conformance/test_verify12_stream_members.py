"""Every member of every event of a provider's documented stream, in turn, of a type it must
not have (issue 12, verified): the client's stream completes (`[DONE]`) or ends with one error
event, never with a dropped connection or fd2's 500; likewise on `/v1/messages` (one Anthropic
`error` event). Bedrock's frames are decoded and written again with the member changed."""

from __future__ import annotations

import base64
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from e2e.conftest import Service
from fd2._native import EventStreamDecoder

from .conftest import Replay
from .scenarios import MAX_TOKENS, MODEL, QUESTION, SYSTEM, messages
from .verify12_support import (
    TRANSLATED,
    assert_no_secret,
    chat_url,
    member_paths,
    replaced,
    sse_events,
    sse_text,
    transcript,
    verify_fd2,  # noqa: F401  # the fixture
)

STREAM = {
    "model": MODEL,
    "messages": messages(),
    "max_tokens": MAX_TOKENS,
    "stream": True,
    "stream_options": {"include_usage": True},
}
ASK = {
    "model": MODEL,
    "max_tokens": MAX_TOKENS,
    "system": SYSTEM,
    "messages": [{"role": "user", "content": QUESTION}],
    "stream": True,
}
WRONG: tuple[Any, ...] = (None, 7, "x", [], {"z": 1}, 1e300)


def _frames_module() -> Any:
    path = Path(__file__).resolve().parents[1] / "modules" / "fd2_inference" / "bedrock_frames.py"
    spec = importlib.util.spec_from_file_location("verify12_bedrock_frames", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FRAMES = _frames_module()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60.0, headers={"anthropic-version": "2023-06-01"}) as client:
        yield client


def _events(provider: str) -> list[dict[str, Any]]:
    """The stream transcript's events as `{"event", "data"}` (Bedrock's decoded)."""
    response = transcript(provider, "stream")["response"]
    if "events" in response:
        return [e for e in response["events"]]
    decoder = EventStreamDecoder(max_message_bytes=1 << 24)
    out = []
    for headers, payload in decoder.feed(base64.b64decode(response["body_b64"])):
        named = dict(headers)
        out.append({"event": named[":event-type"], "data": orjson.loads(payload)})
    return out


def _response(provider: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    if provider == "bedrock":
        body = b"".join(FRAMES.event(e["event"], e["data"]) for e in events)
        return {"status": 200, "body_b64": base64.b64encode(body).decode(), "split_every": 64}
    return {
        "status": 200,
        "headers": [["content-type", "text/event-stream"]],
        "body": sse_text(events).decode(),
        "split_every": 64,
        "gap_s": 0,
    }


def _variants(provider: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    events = _events(provider)
    for index, event in enumerate(events):
        data = event["data"]
        if not isinstance(data, dict):
            continue
        for path in member_paths(data):
            for wrong in WRONG:
                changed = list(events)
                changed[index] = {**event, "data": replaced(data, path, wrong)}
                yield f"event {index} {path} = {wrong!r}", changed


@pytest.mark.parametrize("provider", TRANSLATED)
def test_stream_members_of_a_wrong_type(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded = transcript(provider, "stream")
    failed = 0
    for what, events in _variants(provider):
        loaded["response"] = _response(provider, events)
        replayer.load(loaded)
        response = http.post(chat_url(verify_fd2, provider), json=STREAM)
        if response.status_code != 200:
            assert response.status_code == 502, (what, response.text[:300])
            assert response.json()["error"]["message"], what
            continue
        assert_no_secret(response.content)
        seen = sse_events(response.content)
        assert seen, what
        if seen[-1] == "[DONE]":
            assert not any("error" in json.loads(e) for e in seen[:-1]), what
            continue
        failed += 1
        errors = [e for e in seen if "error" in json.loads(e)]
        assert len(errors) == 1 and seen[-1] == errors[0], (what, seen[-3:])
    if provider != "azure":  # Azure's chunks are OpenAI's, relayed as they are
        assert failed, "no changed stream was refused"


@pytest.mark.parametrize("provider", TRANSLATED)
def test_stream_members_of_a_wrong_type_on_messages(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
    http: httpx.Client,
) -> None:
    loaded = transcript(provider, "stream")
    for what, events in _variants(provider):
        loaded["response"] = _response(provider, events)
        replayer.load(loaded)
        response = http.post(chat_url(verify_fd2, provider, "/v1/messages"), json=ASK)
        if response.status_code != 200:
            assert response.status_code == 502, (what, response.text[:300])
            assert response.json()["type"] == "error", what
            continue
        assert_no_secret(response.content)
        names = [
            line[6:].strip().decode()
            for line in response.content.split(b"\n")
            if line.startswith(b"event:")
        ]
        assert names, what
        if names[-1] == "message_stop":
            assert "error" not in names, what
            continue
        assert names.count("error") == 1 and names[-1] == "error", (what, names[-4:])
