"""Request bodies for the RAG service: the module's defaults where the caller left a gap."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.serving.errors import BadRequest
from fd2_rag.bodies import merged_filter, prepare_chat, prepare_query, prepare_retrieve
from fd2_rag.config import load_config

CONFIG = load_config(
    {
        "service_url": "http://rag",
        "configuration_name": "kb",
        "default_k": 8,
        "default_similarity_threshold": 0.3,
        "use_reranking": True,
        "filter_after_reranking": False,
        "query_expansion_enabled": True,
        "query_expansion_llm_config": "llama",
        "default_metadata_filter": {"status": "published"},
    }
)


def test_query_gets_every_default() -> None:
    assert prepare_query({"query": "q"}, CONFIG) == {
        "query": "q",
        "configuration_name": "kb",
        "k": 8,
        "similarity_threshold": 0.3,
        "filter_after_reranking": False,
        "query_expansion": {
            "enabled": True,
            "strategy": "fusion",
            "llm_config_name": "llama",
            "num_queries": 3,
        },
        "filter": {"status": "published"},
    }


def test_retrieve_also_gets_reranking_and_keeps_the_callers_values() -> None:
    body = {"query": "q", "k": 2, "use_reranking": False, "similarity_threshold": 0}
    prepared = prepare_retrieve(body, CONFIG)
    assert prepared["k"] == 2 and prepared["use_reranking"] is False
    assert prepared["similarity_threshold"] == 0
    assert body == {"query": "q", "k": 2, "use_reranking": False, "similarity_threshold": 0}


def test_several_configurations_get_no_single_default() -> None:
    prepared = prepare_retrieve({"query": "q", "configuration_names": ["a", "b"]}, CONFIG)
    assert "configuration_name" not in prepared


def test_nothing_to_merge_leaves_no_filter() -> None:
    config = load_config({"service_url": "http://rag", "configuration_name": "kb"})
    assert "filter" not in prepare_query({"query": "q"}, config)
    assert "query_expansion" not in prepare_query({"query": "q"}, config)


def test_the_control_towers_zero_threshold_leaves_the_configurations_own() -> None:
    # The Control Tower writes default_similarity_threshold: 0.0 into every manifest that names
    # none; the devkit applies its configuration's threshold when the request has none.
    config = load_config(
        {"service_url": "http://rag", "configuration_name": "kb", "default_similarity_threshold": 0}
    )
    assert "similarity_threshold" not in prepare_query({"query": "q"}, config)
    assert "similarity_threshold" not in prepare_retrieve({"query": "q"}, config)
    assert (
        prepare_query({"query": "q", "similarity_threshold": 0}, config)["similarity_threshold"]
        == 0
    )


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (None, {"status": "published"}),
        ({}, {"status": "published"}),
        ({"team": "a"}, {"$and": [{"status": "published"}, {"team": "a"}]}),
    ],
)
def test_the_module_filter_always_applies(caller: Any, expected: Any) -> None:
    assert merged_filter(caller, {"status": "published"}) == expected
    assert merged_filter(caller, None) == (caller or None)


@pytest.mark.parametrize("body", [{}, {"query": ""}, {"query": "  "}, {"query": ["q"]}])
def test_a_query_is_required(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as caught:
        prepare_query(body, CONFIG)
    assert caught.value.param == "query"


def test_a_filter_must_be_an_object() -> None:
    with pytest.raises(BadRequest) as caught:
        prepare_retrieve({"query": "q", "filter": ["x"]}, CONFIG)
    assert caught.value.param == "filter"


def test_chat_model_is_the_configuration() -> None:
    assert prepare_chat({"messages": []}, CONFIG)["model"] == "kb"
    assert prepare_chat({"model": "other", "messages": []}, CONFIG)["model"] == "other"
    with pytest.raises(BadRequest):
        prepare_chat({"model": 3}, CONFIG)
