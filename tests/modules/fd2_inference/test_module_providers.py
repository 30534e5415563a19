"""The module's provider selection and translated handlers, against the in-process upstream of
test_module.py: what goes upstream, what is answered, what usage is reported, and that the
OpenAI passthrough never runs a translation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest
from aiohttp import web

from fd2.control.secrets import Secret
from fd2.metering import Usage
from fd2.serving.errors import ConfigError
from fd2_inference import extra_endpoints
from fd2_inference.answers import ProviderError
from fd2_inference.extras import ExtraEndpoint, ModuleParts
from fd2_inference.providers.openai import OpenAIProvider

from .test_module import CHAT, Make, answer, metered  # the harness (fixtures: conftest.py)

USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 8},
}
ANSWER = {"id": "c", "object": "chat.completion", "choices": [], "usage": USAGE}


def azure(make: Make, handler: Any, **config: Any) -> Any:
    exchange = make(handler)
    return make(
        handler,
        config={
            "provider": "azure",
            "endpoint_url": exchange.upstream.url(""),
            "api_key": Secret("az-key-1234"),
            "api_version": "2024-10-21",
            **config,
        },
    )


async def test_azure_plain_goes_to_the_deployment_and_reports_usage(make: Make) -> None:
    exchange = azure(make, answer(200, orjson.dumps(ANSWER)))
    await exchange.run("/v1/chat/completions", CHAT, before=metered)
    assert exchange.status == 200
    assert orjson.loads(exchange.body) == ANSWER
    seen = exchange.seen[-1]
    assert seen.path == "/openai/deployments/m/chat/completions"
    assert seen.headers["api-key"] == "az-key-1234"
    assert "authorization" not in {name.lower() for name in seen.headers}
    assert "cookie" not in {name.lower() for name in seen.headers}
    assert seen.headers["x-request-id"] == "req-123"
    assert orjson.loads(seen.body) == {"messages": CHAT["messages"]}
    assert exchange.request.usage == Usage(prompt_tokens=12, completion_tokens=5, cached_tokens=8)
    assert exchange.module.describe() == {"provider": "azure"}


def _sse(*events: Mapping[str, Any] | str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            data = event if isinstance(event, str) else orjson.dumps(event).decode()
            await response.write(f"data: {data}\n\n".encode())
        await response.write_eof()
        return response

    return handler


async def test_azure_stream_reports_the_translators_usage_once(make: Make) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    usage = {"choices": [], "usage": USAGE}
    exchange = azure(
        make, _sse({"choices": [], "prompt_filter_results": []}, chunk, usage, "[DONE]")
    )
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    await exchange.run("/v1/chat/completions", body, before=metered)
    assert exchange.status == 200
    assert exchange.body == (
        b"data: " + orjson.dumps(chunk) + b"\n\n"
        b"data: " + orjson.dumps(usage) + b"\n\n"
        b"data: [DONE]\n\n"
    )
    assert exchange.request.usage == Usage(prompt_tokens=12, completion_tokens=5, cached_tokens=8)


async def test_a_translated_error_keeps_its_meaning_and_retry_after(make: Make) -> None:
    body = b'{"error": {"code": "429", "message": "Please retry after 7 seconds. az-key-1234"}}'
    exchange = azure(make, answer(429, body, **{"retry-after": "7"}))
    with pytest.raises(ProviderError) as raised:  # the core renders it
        await exchange.run("/v1/chat/completions", CHAT)
    error = raised.value
    assert (error.status, error.code) == (429, "rate_limit_exceeded")
    assert (b"retry-after", b"7") in error.extra_headers()
    assert "az-key-1234" not in error.message


async def test_an_unknown_provider_is_a_config_error(make: Make) -> None:
    with pytest.raises(ConfigError, match="unknown provider"):
        await make(answer(200), config={"provider": "nope"}).run("/v1/chat/completions", CHAT)


async def test_a_provider_with_an_apisix_route_is_a_config_error(make: Make) -> None:
    exchange = make(
        answer(200),
        config={"provider": "azure", "apisix_route": "r", "apisix_gateway_module": "gw"},
    )
    with pytest.raises(ConfigError, match="APISIX route"):
        await exchange.run("/v1/chat/completions", CHAT)


@pytest.mark.parametrize("provider", [None, "openai", "OpenAI "])
async def test_the_passthrough_runs_no_translation(
    make: Make, provider: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the passthrough called a translation")

    for method in ("chat_call", "chat_answer", "chat_stream", "failure"):
        monkeypatch.setattr(OpenAIProvider, method, forbidden)
    body = orjson.dumps(ANSWER)
    config = {"provider": provider} if provider is not None else {}
    exchange = await make(answer(200, body), config=config).run("/v1/chat/completions", CHAT)
    assert exchange.body == body  # the upstream's bytes, relayed as they are
    assert exchange.seen[-1].path == "/v1/chat/completions"


async def test_extra_endpoints_join_every_module(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ModuleParts] = []

    async def handler(request: Any, send: Any) -> None:
        return None

    def factory(parts: ModuleParts) -> Sequence[ExtraEndpoint]:
        seen.append(parts)
        return (ExtraEndpoint("/v1/extra", "POST", handler, meter=None),)

    monkeypatch.setattr(extra_endpoints, "EXTRA_ENDPOINTS", (factory,))
    monkeypatch.setattr("fd2_inference.module.EXTRA_ENDPOINTS", (factory,))
    exchange = await make(answer(200)).run("/v1/chat/completions", CHAT)
    assert exchange.module.endpoints()["/v1/extra"] == {"POST": handler}
    assert seen[0].provider == "openai"
    assert seen[0].chat is exchange.module.chat_service
