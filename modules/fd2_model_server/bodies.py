"""Model-server request bodies: checked, completed with the module's model, split into batches.

Pure functions over decoded JSON, in the devkit's model-server shapes (`EmbeddingRequest`,
`RerankerRequest`, `ClassificationRequest`): `texts` (a list of strings), `model_name`, and
`query` (rerank) or `labels` + `include_results` (classify).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from fd2.serving.errors import BadRequest

EMBEDDINGS: Final = "embeddings"
RERANK: Final = "rerank"
CLASSIFY: Final = "classify"


class ModelChoice(msgspec.Struct, frozen=True, kw_only=True):
    """The models one kind of request may use: the manifest's list and default."""

    kind: str
    default: str | None
    available: tuple[str, ...]

    def pick(self, requested: object, param: str = "model_name") -> str | None:
        """The model a request uses; 400 naming it when it is not one this module serves.

        The allowed models are `available_*_models` plus the default. With neither, the module
        names no model: the request's own goes on, or none, and the server uses its default."""
        if requested is None:
            model = self.default
        elif isinstance(requested, str) and requested:
            model = requested
        else:
            raise BadRequest(f"'{param}' must be a model name (a string)", param=param)
        allowed = (*self.available, *((self.default,) if self.default else ()))
        if not allowed:
            return model
        if model is None:
            raise BadRequest(
                f"'{param}' is required: this module has no default {self.kind} model "
                f"(available: {', '.join(self.available)})",
                param=param,
            )
        if model not in allowed:
            raise BadRequest(
                f"The model {model!r} is not available for {self.kind} here "
                f"(available: {', '.join(dict.fromkeys(allowed))})",
                param=param,
                code="model_not_found",
            )
        return model


def texts_of(body: dict[str, Any], field: str = "texts") -> list[str]:
    value = body.get(field)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"'{field}' is required: a list of strings", param=field)
    return value


def prepare(kind: str, body: dict[str, Any], choice: ModelChoice) -> dict[str, Any]:
    """The body to send (before batching): checked, its model decided."""
    texts_of(body)
    if kind == RERANK and not isinstance(body.get("query"), str):
        raise BadRequest("'query' is required: a string", param="query")
    if kind == CLASSIFY:
        texts_of(body, "labels")
        if not isinstance(body.get("include_results", True), bool):
            raise BadRequest("'include_results' must be true or false", param="include_results")
    prepared = dict(body)
    model = choice.pick(body.get("model_name"))
    if model is None:
        prepared.pop("model_name", None)
    else:
        prepared["model_name"] = model
    return prepared


def batches(body: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """`body` split into bodies of at most `size` texts each, in order (one when it fits)."""
    texts: list[str] = body["texts"]
    if len(texts) <= size:
        return [body]
    return [{**body, "texts": texts[start : start + size]} for start in range(0, len(texts), size)]


_RESULT_FIELDS: Final = {EMBEDDINGS: "embeddings", RERANK: "scores", CLASSIFY: "text_results"}


class MergeError(Exception):
    """A batch's answer that does not fit its request (the message says how)."""


def results_of(kind: str, answer: Any, size: int) -> list[Any]:
    """The results of one answer to `size` texts: one per text, or MergeError. A count that does
    not match would pair texts with another text's vector or score."""
    field = _RESULT_FIELDS[kind]
    items = answer.get(field) if isinstance(answer, dict) else None
    if not isinstance(items, list) or len(items) != size:
        raise MergeError(f"a batch of {size} texts got an answer without {size} {field}")
    return items


def merge(kind: str, answers: Sequence[Any], sizes: Sequence[int]) -> dict[str, Any]:
    """One answer from the answers to the batches, in the batches' order."""
    field = _RESULT_FIELDS[kind]
    results: list[Any] = []
    for answer, size in zip(answers, sizes, strict=True):
        results.extend(results_of(kind, answer, size))
    first = answers[0]
    merged: dict[str, Any] = {**first, field: results}
    if kind == EMBEDDINGS:
        merged["dimensions"] = len(results[0]) if results and isinstance(results[0], list) else 0
    return merged
