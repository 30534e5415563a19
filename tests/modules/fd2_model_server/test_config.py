"""The model_server config: the Control Tower's ModelServerModule fields and defaults."""

from __future__ import annotations

import pytest

from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError
from fd2_model_server.config import load_config


def test_defaults_are_the_control_towers() -> None:
    config = load_config({"service_url": "http://ms:9001/api/v1/models", "new_field": 1})
    assert config.embeddings_endpoint == "/embeddings" and config.health_endpoint == "/health"
    assert config.batch_size == 32 and config.request_timeout == 30 and config.max_retries == 2
    assert config.available_embedding_models == [] and config.default_embedding_model is None
    assert config.api_key_enabled is False and config.api_key is None


def test_api_key_is_a_secret() -> None:
    key = Secret("k-123", "env:KEY")
    config = load_config({"service_url": "http://ms", "api_key_enabled": True, "api_key": key})
    assert config.api_key is key
    assert "k-123" not in repr(config)


def test_api_key_enabled_without_a_server_key_is_served() -> None:
    # api_key_enabled asks callers for a project API key (the Control Tower's key-auth); the
    # devkit's model server checks no credential, so it needs no key of its own.
    config = load_config({"service_url": "http://ms", "api_key_enabled": True})
    assert config.api_key_enabled is True and config.api_key is None


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({}, "service_url"),
        ({"service_url": "http://ms", "batch_size": 0}, "batch_size"),
        ({"service_url": "http://ms", "rerank_endpoint": "rerank"}, "rerank_endpoint"),
        ({"service_url": "http://ms", "available_embedding_models": "bge"}, "available"),
    ],
)
def test_unusable_configs(raw: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    assert says in caught.value.message
