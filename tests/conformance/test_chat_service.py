"""The module's in-process chat path (`ProviderChat`, `InferenceModule.chat_service`) over every
provider with transcripts: the same wire requests as the HTTP endpoint, OpenAI objects back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from e2e.conftest import Service
from fd2.control.secrets import Secret
from fd2.metering import Usage
from fd2.module import Timeouts
from fd2.serving.errors import Fd2Error
from fd2_inference.chat_service import ProviderChat
from fd2_inference.config import load_config, provider_settings
from fd2_inference.providers.base import ProviderStreamError
from fd2_inference.providers.registry import build_provider
from fd2_inference.transforms import Defaults, provider_base_url, upstream_target
from fd2_inference.upstream import Upstream

from .conftest import SECRET_FIELDS, ProviderDir, Replay, providers
from .scenarios import ANSWER, COMPLETION_TOKENS, CUT_PREFIX, MAX_TOKENS, MODEL, messages
from .test_conformance import _transcript

NAMES = [provider.name for provider in providers()]


class _Request:
    """What the chat path reads of a request: its id, and where usage is reported."""

    def __init__(self) -> None:
        self.request_id = "req-chat-service"
        self.usage: list[Usage] = []

    def report_usage(self, usage: Usage) -> None:
        self.usage.append(usage)


async def _chat(
    provider: ProviderDir, replay: Service, session: aiohttp.ClientSession, total_s: float = 10
) -> ProviderChat:
    raw = {
        key: Secret(value) if key in SECRET_FIELDS and isinstance(value, str) else value
        for key, value in provider.config.items()
    }
    config = load_config(raw)  # as the core hands it over: secret fields resolved
    name = config.provider or "openai"
    url = f"{replay.url}{provider.base_path}"
    settings = provider_settings(config, name, "", config.api_key)
    if name == "openai":
        base, options = upstream_target(None, url).url, {"chat_path": "/chat/completions"}
        upstream = Upstream(session, base, settings.api_key, Timeouts(total_s=total_s))
    else:
        base, options = provider_base_url(None, url), dict(settings.options)
        upstream = Upstream(session, base, None, Timeouts(total_s=total_s))
    built = build_provider(provider_settings(config, name, base, config.api_key, options=options))
    return ProviderChat(built, upstream, Defaults(), logging.getLogger("test"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages(), "max_tokens": MAX_TOKENS, **extra}


@pytest.mark.parametrize("name", NAMES)
async def test_complete(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    provider = next(p for p in providers() if p.name == name)
    replayer.load(_transcript(name, "plain"))
    chat = await _chat(provider, replay, session)
    request = _Request()
    answer = await chat.complete(_body(), request)
    assert answer["choices"][0]["message"]["content"] == ANSWER
    assert [u.completion_tokens for u in request.usage] == [COMPLETION_TOKENS]
    assert replayer.result()["mismatches"] == []


@pytest.mark.parametrize("name", NAMES)
async def test_stream(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    provider = next(p for p in providers() if p.name == name)
    replayer.load(_transcript(name, "stream"))
    chat = await _chat(provider, replay, session)
    request = _Request()
    text = ""
    async for chunk in chat.stream(_body(stream=True), request):
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
    assert text == ANSWER
    assert [u.completion_tokens for u in request.usage] == [COMPLETION_TOKENS]
    assert replayer.result()["mismatches"] == []


@pytest.mark.parametrize("name", NAMES)
async def test_failures(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    provider = next(p for p in providers() if p.name == name)
    chat = await _chat(provider, replay, session)
    replayer.load(_transcript(name, "error_429"))
    with pytest.raises(Fd2Error) as raised:
        await chat.complete(_body(), _Request())
    assert raised.value.status == 429
    assert (b"retry-after", b"7") in raised.value.extra_headers()
    replayer.load(_transcript(name, "stream_cut"))
    text = ""
    with pytest.raises(ProviderStreamError):
        async for chunk in chat.stream(_body(stream=True), _Request()):
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
    assert text == CUT_PREFIX


@pytest.mark.parametrize("name", NAMES)
async def test_stream_time_limit(
    name: str, replay: Service, replayer: Replay, session: aiohttp.ClientSession
) -> None:
    provider = next(p for p in providers() if p.name == name)
    transcript = _transcript(name, "stream")
    assert transcript is not None
    transcript["response"]["gap_s"] = 0.05  # seconds of pieces
    replayer.load(transcript)
    chat = await _chat(provider, replay, session, total_s=0.5)
    chunks = chat.stream(_body(stream=True), _Request())
    with pytest.raises(ProviderStreamError) as raised:
        async for _chunk in chunks:
            pass
    assert raised.value.failure.status == 504
