"""Decoding the module config: tolerant of the Control Tower's extra fields, strict on values."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2_inference.config import load_config


def test_manifest_config_decodes_with_unknown_fields() -> None:
    key = Secret("sk-test-123", "env:ACME_UPSTREAM_API_KEY")
    config = load_config(
        {
            "model_name": "gpt-4o-mini",
            "endpoint_url": "http://127.0.0.1:9100/v1/chat/completions",
            "api_key": key,
            "system_prompt": "You are ACME's helpful assistant.",
            "max_tokens": 1024,
            "temperature": 0.2,
            "top_p": 0.9,
            "something_new": {"the": "control tower added it"},
        }
    )
    assert config.model_name == "gpt-4o-mini"
    assert config.api_key is key
    assert config.max_tokens == 1024


def test_placeholder_strings_are_converted() -> None:
    config = load_config({"max_tokens": "256", "temperature": "0.5"})
    assert config.max_tokens == 256
    assert config.temperature == 0.5


@pytest.mark.parametrize(
    "raw",
    [
        {"max_tokens": 0},
        {"temperature": 3},
        {"top_p": -0.1},
        {"batch_size": 0},
        {"max_tokens": "many"},
        {"api_key": "sk-plain-literal-key"},
    ],
)
def test_invalid_values_are_config_errors(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    assert "sk-plain-literal-key" not in caught.value.message
