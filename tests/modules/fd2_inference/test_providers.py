"""The provider seam's core: selection, settings, the shared error mapping, the OpenAI and Azure
translations, SSE framing and embeddings as the client asked for them."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2_inference.answers import ProviderError, relayed_headers, unsupported
from fd2_inference.config import load_config, provider_settings
from fd2_inference.embeddings import as_requested
from fd2_inference.framing import SseDeframer, is_stream_answer
from fd2_inference.providers.azure import AzureProvider
from fd2_inference.providers.base import (
    ProviderSettings,
    ProviderStreamError,
    StreamEvent,
    UnsupportedParameter,
    standard_failure,
)
from fd2_inference.providers.openai import OpenAIChunks, OpenAIProvider
from fd2_inference.providers.registry import PROVIDERS, build_provider
from fd2_inference.transforms import provider_base_url


def _settings(name: str, **kwargs: Any) -> ProviderSettings:
    return ProviderSettings(name=name, base_url="http://127.0.0.1:1", **kwargs)


def test_registry_builds_known_providers() -> None:
    assert isinstance(build_provider(_settings("openai")), OpenAIProvider)
    assert isinstance(build_provider(_settings("azure")), AzureProvider)
    assert build_provider(_settings("openai")).passthrough
    assert not build_provider(_settings("azure")).passthrough


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        build_provider(_settings("nope"))


def test_a_registered_provider_missing_from_the_build_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(PROVIDERS, "ghost", "fd2_inference.providers.ghost:GhostProvider")
    with pytest.raises(ConfigError, match="not available"):
        build_provider(_settings("ghost"))


def test_provider_settings_from_config() -> None:
    config = load_config(
        {
            "provider": "azure",
            "api_key": Secret("az-key-123"),
            "api_version": "2024-10-21",
            "deployment": "prod",
            "unsupported_params": "drop",
            "provider_options": {"x": 1},
            "aws_secret_access_key": Secret("aws-secret-1"),
            "model_name": "gpt-4o",
        }
    )
    settings = provider_settings(config, "azure", "https://x.example", config.api_key)
    assert settings.api_key == "az-key-123"
    assert settings.deployment == "prod"
    assert settings.unsupported_params == "drop"
    assert settings.options == {"x": 1}
    assert settings.credentials == {"aws_secret_access_key": "aws-secret-1"}
    assert settings.model == "gpt-4o"
    assert "aws-secret-1" not in repr(config)


def test_config_rejects_a_bad_policy_and_an_empty_provider() -> None:
    with pytest.raises(ConfigError):
        load_config({"unsupported_params": "ignore"})
    with pytest.raises(ConfigError, match="empty provider"):
        load_config({"provider": " "})


def test_provider_base_url_is_used_as_written() -> None:
    assert provider_base_url(None, "https://r.openai.azure.com/") == "https://r.openai.azure.com"
    assert provider_base_url("http://a:1/x", "https://b") == "http://a:1/x"
    with pytest.raises(ConfigError):
        provider_base_url(None, None)
    with pytest.raises(ConfigError):
        provider_base_url(None, "https://x/?key=1")


@pytest.mark.parametrize(
    ("status", "overloaded", "expected"),
    [
        (400, False, (400, "invalid_request_error")),
        (401, False, (401, "authentication_error")),
        (403, False, (403, "permission_error")),
        (404, False, (404, "not_found_error")),
        (413, False, (413, "invalid_request_error")),
        (422, False, (400, "invalid_request_error")),
        (429, False, (429, "rate_limit_error")),
        (529, False, (503, "server_error")),
        (500, True, (503, "server_error")),
        (500, False, (502, "upstream_error")),
        (502, False, (502, "upstream_error")),
        (409, False, (409, "invalid_request_error")),
    ],
)
def test_standard_failure_keeps_the_meaning_of_statuses(
    status: int, overloaded: bool, expected: tuple[int, str]
) -> None:
    failure = standard_failure(status, "", {}, overloaded=overloaded)
    assert (failure.status, failure.type) == expected
    assert failure.message == f"The provider answered HTTP {status}."


def test_standard_failure_passes_retry_and_rate_limit_headers() -> None:
    headers = {
        "Retry-After": "7",
        "x-ratelimit-remaining-requests": "0",
        "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:00Z",
        "set-cookie": "no",
    }
    failure = standard_failure(429, "slow down", headers)
    assert dict(failure.headers) == {
        "retry-after": "7",
        "x-ratelimit-remaining-requests": "0",
        "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:00Z",
    }


def test_provider_error_renders_the_failure_scrubbed() -> None:
    from fd2.telemetry.scrub import Scrubber

    failure = standard_failure(401, "bad key az-key-123", {"retry-after": "1"}, code="401")
    error = ProviderError(failure, Scrubber(["az-key-123"]))
    assert error.status == 401
    assert "az-key-123" not in error.message
    assert error.extra_headers() == [(b"retry-after", b"1")]


def test_unsupported_parameter_is_a_400_naming_it() -> None:
    error = unsupported(UnsupportedParameter("n", "anthropic", ": only one choice"))
    assert error.status == 400
    assert error.param == "n"
    assert error.code == "unsupported_parameter"


def test_azure_call_uses_the_deployment_url_and_api_key() -> None:
    provider = AzureProvider(_settings("azure", api_key="az-key", api_version="2024-10-21"))
    call = provider.chat_call({"model": "gpt-4o-prod", "messages": []}, stream=True)
    assert call.path == "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    assert ("api-key", "az-key") in call.headers
    assert all(name != "authorization" for name, _ in call.headers)
    assert orjson.loads(call.body or b"") == {"messages": []}
    pinned = AzureProvider(_settings("azure", deployment="fixed"))
    assert pinned.embeddings_call({"model": "m", "input": "x"}).path.startswith(
        "/openai/deployments/fixed/embeddings?api-version="
    )


def test_azure_errors_map_both_shapes() -> None:
    provider = AzureProvider(_settings("azure"))
    filtered = provider.failure(
        400,
        {},
        b'{"error": {"message": "filtered", "type": null, "param": "prompt", '
        b'"code": "content_filter", "status": 400}}',
    )
    assert (filtered.status, filtered.code) == (400, "content_filter")
    apim = provider.failure(401, {}, b'{"statusCode": 401, "message": "Access denied"}')
    assert apim.status == 401 and "Access denied" in apim.message
    numeric = provider.failure(429, {"retry-after": "3"}, b'{"error": {"code": "429"}}')
    assert numeric.code == "rate_limit_exceeded" and dict(numeric.headers) == {"retry-after": "3"}
    assert provider.failure(500, {}, b"<html>").status == 502


def test_openai_chunks_pass_through_and_end() -> None:
    chunks = OpenAIChunks("azure", skip_empty=True)
    assert chunks.feed(StreamEvent(None, b'{"choices": [], "prompt_filter_results": []}')) == ()
    chunk = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}
    assert chunks.feed(StreamEvent(None, orjson.dumps(chunk))) == (chunk,)
    usage = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    assert chunks.feed(StreamEvent(None, orjson.dumps(usage))) == (usage,)
    assert chunks.usage == {"prompt_tokens": 1, "completion_tokens": 2}
    assert chunks.feed(StreamEvent(None, b"[DONE]")) == ()
    assert chunks.finish() == ()


def test_openai_chunks_cut_or_failed() -> None:
    cut = OpenAIChunks("openai")
    cut.feed(StreamEvent(None, b'{"choices": [{"index": 0, "delta": {"content": "x"}}]}'))
    with pytest.raises(ProviderStreamError) as raised:
        cut.finish()
    assert raised.value.failure.code == "upstream_stream_incomplete"
    failed = OpenAIChunks("openai")
    with pytest.raises(ProviderStreamError):
        failed.feed(StreamEvent(None, b'{"error": {"message": "overloaded"}}'))


def test_sse_deframer_across_awkward_boundaries() -> None:
    deframer = SseDeframer()
    stream = 'event: message_start\ndata: {"a":"é"}\n\ndata: [DONE]\n\n'.encode()
    events = [event for i in range(0, len(stream), 3) for event in deframer.feed(stream[i : i + 3])]
    assert events == [
        StreamEvent("message_start", '{"a":"é"}'.encode()),
        StreamEvent(None, b"[DONE]"),
    ]
    assert deframer.finish() == 0


def test_stream_answer_content_types() -> None:
    assert is_stream_answer("sse", 200, "text/event-stream; charset=utf-8")
    assert not is_stream_answer("sse", 400, "text/event-stream")
    assert is_stream_answer("eventstream", 200, "application/vnd.amazon.eventstream")
    assert not is_stream_answer("eventstream", 200, "application/json")


def test_embeddings_in_base64_when_asked() -> None:
    answer = {"data": [{"index": 0, "embedding": [0.5, -1.0]}], "usage": {}}
    assert as_requested({"encoding_format": "float"}) is None
    finish = as_requested({"encoding_format": "base64"})
    assert finish is not None
    encoded = finish(answer)["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.5, -1.0)


def test_retry_after_is_relayed() -> None:
    relayed = relayed_headers([(b"Retry-After", b"7"), (b"x-ratelimit-limit", b"3"), (b"a", b"b")])
    assert relayed == [(b"retry-after", b"7"), (b"x-ratelimit-limit", b"3")]
