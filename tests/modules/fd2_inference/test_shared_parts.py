"""What routes with equal settings share (`fd2_inference.shared_parts`), and that sharing keeps
each route's own settings."""

from __future__ import annotations

from typing import Any

from fd2.control.secrets import Secret
from fd2_inference import shared_parts
from fd2_inference.config import load_config, provider_settings
from fd2_inference.providers.openai import OpenAIProvider
from fd2_inference.providers.registry import DEFAULT_PROVIDER, build_provider


def _state(provider: object) -> dict[str, Any]:
    return dict(vars(provider))


def test_openai_provider_reads_only_its_key_and_chat_path() -> None:
    # The shared provider is built from the settings it reads alone: built from a module's
    # whole settings instead, it must come out the same (else that setting joins the key).
    config = load_config(
        {
            "model_name": "gpt-4o",
            "api_key": Secret("sk-one"),
            "api_version": "2024-01-01",
            "deployment": "dep",
            "region": "eu-west-1",
            "unsupported_params": "drop",
        }
    )
    whole = build_provider(
        provider_settings(
            config,
            DEFAULT_PROVIDER,
            "http://upstream.example/v1",
            config.api_key,
            options={"chat_path": "/chat/completions"},
        )
    )
    shared = shared_parts.openai_provider(
        config, "http://other.example/v1", "sk-one", "/chat/completions"
    )
    assert isinstance(whole, OpenAIProvider) and isinstance(shared, OpenAIProvider)
    assert _state(shared) == _state(whole)
    assert {"_chat_path", "_headers"} == set(_state(whole))  # what the key covers


def test_openai_provider_shared_by_key_and_chat_path_only() -> None:
    one = load_config({"model_name": "a"})
    other = load_config({"model_name": "b", "api_version": "x"})
    first = shared_parts.openai_provider(one, "http://a/v1", "sk-1", "/chat/completions")
    assert shared_parts.openai_provider(other, "http://b/v1", "sk-1", "/chat/completions") is first
    assert (
        shared_parts.openai_provider(one, "http://a/v1", "sk-2", "/chat/completions") is not first
    )
    assert shared_parts.openai_provider(one, "http://a/v1", "sk-1", "") is not first
    headers = _state(shared_parts.openai_provider(one, "http://a/v1", "sk-2", ""))["_headers"]
    assert ("authorization", "Bearer sk-2") in headers[False]


def test_openai_provider_not_shared_with_options_or_credentials() -> None:
    with_options = load_config({"provider_options": {"x": 1}})
    assert shared_parts.openai_provider(with_options, "http://a/v1", None, "") is None
    with_aws = load_config({"aws_access_key_id": Secret("AKIA")})
    assert shared_parts.openai_provider(with_aws, "http://a/v1", None, "") is None
