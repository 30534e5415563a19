"""Model-server bodies: the manifest's models enforced, big inputs split and put back together."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.serving.errors import BadRequest
from fd2_model_server.bodies import (
    CLASSIFY,
    EMBEDDINGS,
    RERANK,
    MergeError,
    ModelChoice,
    batches,
    merge,
    prepare,
)

CHOICE = ModelChoice(kind="embeddings", default="bge", available=("bge", "e5"))


def test_the_default_fills_a_gap_and_listed_models_pass() -> None:
    assert CHOICE.pick(None) == "bge"
    assert CHOICE.pick("e5") == "e5"


def test_a_model_off_the_list_is_named() -> None:
    with pytest.raises(BadRequest) as caught:
        CHOICE.pick("gpt-4")
    assert "'gpt-4'" in caught.value.message and "bge, e5" in caught.value.message
    assert caught.value.code == "model_not_found" and caught.value.param == "model_name"


def test_the_default_alone_is_a_list_of_one() -> None:
    only = ModelChoice(kind="reranking", default="r", available=())
    assert only.pick(None) == "r"
    with pytest.raises(BadRequest):
        only.pick("other")


def test_a_list_without_default_needs_a_model() -> None:
    listed = ModelChoice(kind="classification", default=None, available=("c",))
    with pytest.raises(BadRequest) as caught:
        listed.pick(None, param="model")
    assert caught.value.param == "model" and "required" in caught.value.message


def test_no_list_and_no_default_leaves_the_choice_to_the_server() -> None:
    free = ModelChoice(kind="embeddings", default=None, available=())
    assert free.pick(None) is None
    assert free.pick("anything") == "anything"
    assert "model_name" not in prepare(EMBEDDINGS, {"texts": ["a"]}, free)


@pytest.mark.parametrize(
    ("kind", "body", "param"),
    [
        (EMBEDDINGS, {"texts": "a"}, "texts"),
        (EMBEDDINGS, {"texts": [None]}, "texts"),
        (RERANK, {"texts": ["a"], "query": 1}, "query"),
        (CLASSIFY, {"texts": ["a"], "labels": "x"}, "labels"),
        (CLASSIFY, {"texts": ["a"], "labels": ["x"], "include_results": "yes"}, "include_results"),
        (EMBEDDINGS, {"texts": ["a"], "model_name": ["bge"]}, "model_name"),
    ],
)
def test_wrong_shapes(kind: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        prepare(kind, body, CHOICE)
    assert caught.value.param == param


def test_batches_keep_order_and_other_fields() -> None:
    body = {"texts": list("abcdefg"), "query": "q", "model_name": "m"}
    parts = batches(body, 3)
    assert [part["texts"] for part in parts] == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert all(part["query"] == "q" and part["model_name"] == "m" for part in parts)
    assert batches(body, 7) == [body]


def test_merge_puts_answers_back_in_order() -> None:
    answers = [
        {"embeddings": [[1.0, 2.0], [3.0, 4.0]], "dimensions": 2, "model": "m"},
        {"embeddings": [[5.0, 6.0]], "dimensions": 2, "model": "m"},
    ]
    assert merge(EMBEDDINGS, answers, [2, 1]) == {
        "embeddings": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
        "dimensions": 2,
        "model": "m",
    }
    scores = merge(
        RERANK, [{"scores": [0.1], "model": "r"}, {"scores": [0.2], "model": "r"}], [1, 1]
    )
    assert scores == {"scores": [0.1, 0.2], "model": "r"}


@pytest.mark.parametrize("answer", [{"embeddings": [[1.0]]}, {"scores": [1]}, ["x"], None])
def test_merge_refuses_an_answer_that_does_not_fit(answer: Any) -> None:
    with pytest.raises(MergeError):
        merge(EMBEDDINGS, [answer, {"embeddings": [[1.0]]}], [2, 1])
