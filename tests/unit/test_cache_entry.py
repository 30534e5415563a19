"""The response cache's parts alone: request directives, what a recorded answer stores, the
admin pattern's scope, and the single flight."""

from __future__ import annotations

import asyncio

import pytest

from fd2.admin.cache_admin import redis_pattern
from fd2.control.secrets import Secret
from fd2.pipeline.data_steps import answers_generation
from fd2.response_cache.entry import ENCODER, Entry, Recorder, decode, replay
from fd2.response_cache.flight import Flights
from fd2.response_cache.settings import CacheSettings, cache_settings, directive
from fd2.serving.errors import BadRequest, ConfigError
from fd2.types import Message

SETTINGS = CacheSettings(ttl_s=60, max_ttl_s=120, max_entry_bytes=100)


def test_directives() -> None:
    assert directive([], SETTINGS) == directive([(b"accept", b"*/*")], SETTINGS)
    plain = directive([], SETTINGS)
    assert plain.read and plain.ttl_s == 60
    assert directive([(b"cache-control", b"no-store")], SETTINGS).ttl_s == 0
    refresh = directive([(b"cache-control", b"max-age=0, No-Cache")], SETTINGS)
    assert not refresh.read and refresh.ttl_s == 60
    assert directive([(b"x-fd2-cache-ttl", b"5")], SETTINGS).ttl_s == 5
    assert directive([(b"x-fd2-cache-ttl", b"9999")], SETTINGS).ttl_s == 120
    for bad in (b"soon", b"-1", b"nan"):
        with pytest.raises(BadRequest):
            directive([(b"x-fd2-cache-ttl", bad)], SETTINGS)


def test_settings_block() -> None:
    assert cache_settings(None) is None
    assert cache_settings({"enabled": False}) is None
    assert cache_settings({}) == CacheSettings()
    with pytest.raises(ConfigError):
        cache_settings({"ttl": 5})
    with pytest.raises(ConfigError):
        cache_settings({"ttl_s": 0})


async def record(messages: list[Message], limit: int = 100) -> Entry | None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    recorder = Recorder(send, limit)
    for message in messages:
        await recorder(dict(message))
    assert len(sent) == len(messages)
    assert (b"x-fd2-cache", b"miss") in sent[0]["headers"]
    return recorder.entry()


def start(status: int = 200, kind: bytes = b"application/json") -> Message:
    return {"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def test_what_is_stored() -> None:
    entry = await record([start(), body(b'{"a":', True), body(b"1}")])
    assert entry == Entry(200, b"application/json", [b'{"a":', b"1}"], False)
    assert decode(ENCODER.encode(entry)) == entry
    assert decode(b"garbage") is None
    assert await record([start(400), body(b"{}")]) is None
    assert await record([start(), body(b"x" * 101)]) is None
    assert await record([start(), body(b"{}", True)]) is None  # never ended
    sse = b"text/event-stream"
    done = [start(kind=sse), body(b"data: 1\n\n", True), body(b"data: [DONE]\n\n", True), body(b"")]
    stored = await record(done)
    assert stored is not None and stored.streamed
    assert stored.chunks == [b"data: 1\n\n", b"data: [DONE]\n\n"]
    assert await record([start(kind=sse), body(b"data: 1\n\n", True), body(b"")]) is None


async def test_replay_keeps_the_chunks() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    entry = Entry(200, b"text/event-stream", [b"data: 1\n\n", b"data: [DONE]\n\n"], True)
    await replay(entry, send, [(b"x-fd2-cache", b"hit")])
    assert [m.get("body") for m in sent[1:]] == entry.chunks
    assert [m["more_body"] for m in sent[1:]] == [True, False]
    assert (b"x-fd2-cache", b"hit") in sent[0]["headers"]


def test_admin_patterns_stay_in_one_project() -> None:
    assert redis_pattern("acme") == "fd2:cache:acme:*:*:*:*"
    assert redis_pattern("acme/chat/dev/gpt-4o*") == "fd2:cache:acme:chat:dev:gpt-4o*:*"
    assert redis_pattern("acme/chat/dev/meta/llama-3") == "fd2:cache:acme:chat:dev:meta/llama-3:*"
    for bad in ("*", "ac*me/chat", "", "acme/ch at", "acme/chat/dev/a b"):
        with pytest.raises(BadRequest):
            redis_pattern(bad)


async def test_single_flight() -> None:
    flights = Flights()
    assert flights.join("k") is None
    waiter = flights.join("k")
    assert waiter is not None
    entry = Entry(200, b"application/json", [b"{}"], False)
    flights.land("k", entry)
    assert await asyncio.wait_for(waiter, 1) == entry
    assert flights.join("k") is None  # a new flight after landing


def test_a_config_or_redaction_change_is_a_new_generation_of_entries() -> None:
    config = {"model_name": "m", "system_prompt": "be brief", "api_key": Secret("sk-1", "env:K")}
    same = answers_generation(dict(config), {"email": "mask"})
    assert same == answers_generation(dict(config), {"email": "mask"})
    assert same != answers_generation({**config, "system_prompt": "be long"}, {"email": "mask"})
    assert same != answers_generation(dict(config), {"email": "block"})
    # Secrets count by their reference: a generation never depends on (or shows) a value.
    rotated = {**config, "api_key": Secret("sk-2", "env:K")}
    assert answers_generation(rotated, {"email": "mask"}) == same
