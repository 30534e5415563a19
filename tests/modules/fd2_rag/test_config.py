"""The rag_service config: the Control Tower's RAGServiceModule fields and defaults."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.serving.errors import ConfigError
from fd2_rag.config import load_config

BASE = {"service_url": "http://rag:8080/api/v1", "configuration_name": "kb"}


def test_defaults_are_the_control_towers() -> None:
    config = load_config({**BASE, "added_by_a_newer_tower": True})
    assert (config.query_endpoint, config.retrieve_endpoint) == ("/query", "/retrieve")
    assert config.default_k == 5 and config.default_similarity_threshold == 0.0
    assert config.use_reranking is False and config.filter_after_reranking is True
    assert config.query_expansion_num_queries == 3
    assert config.request_timeout == 60 and config.max_retries == 2
    assert config.jwt_auth_enabled is False and config.default_metadata_filter is None


def test_placeholder_strings_are_converted() -> None:
    config = load_config({**BASE, "default_k": "10", "request_timeout": "120"})
    assert config.default_k == 10 and config.request_timeout == 120


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"configuration_name": "kb"}, "service_url"),
        ({"service_url": "http://rag"}, "configuration_name"),
        ({**BASE, "service_url": "rag:8080"}, "http(s) URL"),
        ({**BASE, "query_endpoint": "query"}, "query_endpoint"),
        ({**BASE, "default_k": 0}, "default_k"),
        ({**BASE, "max_retries": -1}, "max_retries"),
        ({**BASE, "query_expansion_enabled": True}, "query_expansion_llm_config"),
        (
            {
                **BASE,
                "query_expansion_enabled": True,
                "query_expansion_llm_config": "l",
                "query_expansion_strategy": "guess",
            },
            "fusion, multi_query",
        ),
    ],
)
def test_unusable_configs_name_the_field(raw: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    assert says in caught.value.message
