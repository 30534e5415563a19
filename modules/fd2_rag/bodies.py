"""Request bodies for the RAG service: the caller's, completed with the module's defaults.

Pure functions over decoded JSON. The devkit's own request models (`QueryRequest`,
`RetrieveRequest`) validate everything else and their refusals reach the caller as 400s; here
only what fd2 must read itself is checked (the query text, the filter it merges).
"""

from __future__ import annotations

from typing import Any

import orjson

from fd2.serving.errors import BadRequest
from fd2_rag.config import RagServiceConfig


def prepare_query(body: dict[str, Any], config: RagServiceConfig) -> dict[str, Any]:
    """A `/query` body (the devkit's QueryRequest): defaults for what the caller left out.

    A query reads one configuration, `configuration_name` (QueryRequest has no
    `configuration_names`: the devkit ignores it), so the default is always filled in."""
    prepared = _common(body, config)
    _default(prepared, "configuration_name", config.configuration_name)
    return prepared


def prepare_retrieve(body: dict[str, Any], config: RagServiceConfig) -> dict[str, Any]:
    """A `/retrieve` body (the devkit's RetrieveRequest): as a query, plus reranking and
    `configuration_names` (several configurations, fused)."""
    names = body.get("configuration_names")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(name, str) and name for name in names)
    ):
        raise BadRequest(
            "'configuration_names' must be a list of RAG configuration names (strings)",
            param="configuration_names",
        )
    prepared = _common(body, config)
    if not names:
        _default(prepared, "configuration_name", config.configuration_name)
    _default(prepared, "use_reranking", config.use_reranking)
    return prepared


def configurations_read(body: dict[str, Any]) -> list[str]:
    """The RAG configurations a prepared retrieve makes the devkit read, the primary first.

    The devkit's rule (its /retrieve): a non-empty `configuration_names` wins over
    `configuration_name`. Every one of them
    is a "model" the caller must be allowed, not only the primary: the devkit itself checks a
    token against the primary configuration alone."""
    names = body.get("configuration_names")
    if isinstance(names, list) and names:
        return [name for name in names if isinstance(name, str)]
    name = body.get("configuration_name")
    return [name] if isinstance(name, str) else []


def query_configuration(body: dict[str, Any]) -> list[str]:
    """The configuration a prepared query reads: `configuration_name` (QueryRequest has no
    `configuration_names`)."""
    name = body.get("configuration_name")
    return [name] if isinstance(name, str) else []


def chat_configuration(body: dict[str, Any]) -> list[str]:
    """The configuration a prepared chat completion reads: its `model`."""
    model = body.get("model")
    return [model] if isinstance(model, str) else []


def prepare_chat(body: dict[str, Any], config: RagServiceConfig) -> dict[str, Any]:
    """A `/v1/chat/completions` body: the devkit reads its `model` as the configuration name."""
    prepared = dict(body)
    _default(prepared, "model", config.configuration_name)
    if not isinstance(prepared["model"], str) or not prepared["model"]:
        raise BadRequest("'model' must be a RAG configuration name (a string)", param="model")
    return prepared


def query_text(body: dict[str, Any]) -> str:
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("'query' is required: the question, a non-empty string", param="query")
    return query


def _common(body: dict[str, Any], config: RagServiceConfig) -> dict[str, Any]:
    query_text(body)
    prepared = dict(body)
    _default(prepared, "k", config.default_k)
    if config.default_similarity_threshold > 0:
        # 0.0 is the Control Tower's default, written into every manifest that names none: sent,
        # it would replace the RAG configuration's own threshold (the devkit's is 0.7) with
        # "keep everything". Left out, the devkit applies the configuration's.
        _default(prepared, "similarity_threshold", config.default_similarity_threshold)
    _default(prepared, "filter_after_reranking", config.filter_after_reranking)
    if config.query_expansion_enabled and config.query_expansion_llm_config:
        _default(
            prepared,
            "query_expansion",
            {
                "enabled": True,
                "strategy": config.query_expansion_strategy or "fusion",
                "llm_config_name": config.query_expansion_llm_config,
                "num_queries": config.query_expansion_num_queries,
            },
        )
    prepared["filter"] = merged_filter(prepared.get("filter"), config.default_metadata_filter)
    if prepared["filter"] is None:
        del prepared["filter"]
    return prepared


def merged_filter(caller: object, default: dict[str, Any] | None) -> dict[str, Any] | None:
    """The module's metadata filter always applies: alone, or `$and`-ed with the caller's (as
    the devkit itself merges the filter a JWT carries), so a caller cannot widen it."""
    if caller is not None and not isinstance(caller, dict):
        raise BadRequest("'filter' must be an object (a metadata filter)", param="filter")
    if not caller:
        return dict(default) if default else None
    if not default:
        return caller
    return {"$and": [default, caller]}


def _default(body: dict[str, Any], field: str, value: Any) -> None:
    if body.get(field) is None:
        body[field] = value


def encoded(body: dict[str, Any]) -> bytes:
    """The JSON to send the service. orjson reads deeper nesting (1024) than it writes (255): a
    body between the two was accepted by fd2 and cannot be forwarded, which is the caller's 400,
    not the gateway's 500."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise BadRequest("The request body is nested too deeply to be forwarded.") from None
