"""OpenAI's embeddings shape over the model server's."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from fd2.serving.errors import BadRequest
from fd2_model_server.openai_shape import (
    check_options,
    encoding_format,
    openai_answer,
    openai_texts,
)


def test_inputs() -> None:
    assert openai_texts({"input": "a"}) == ["a"]
    assert openai_texts({"input": ["a", "b"]}) == ["a", "b"]


@pytest.mark.parametrize("value", [None, [], [1, 2], [[1, 2]], 5, ["a", 1]])
def test_inputs_refused(value: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        openai_texts({"input": value})
    assert caught.value.param == "input"


def test_options() -> None:
    assert encoding_format({}) == "float"
    assert encoding_format({"encoding_format": "base64"}) == "base64"
    with pytest.raises(BadRequest):
        encoding_format({"encoding_format": "binary"})
    with pytest.raises(BadRequest):
        check_options({"dimensions": 256})
    check_options({"dimensions": None})


def test_answer_in_floats_and_base64() -> None:
    vectors = [[0.5, -1.25], [2.0, 0.0]]
    plain = orjson.loads(openai_answer(vectors, "m", "float", 7))
    assert plain == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.25]},
            {"object": "embedding", "index": 1, "embedding": [2.0, 0.0]},
        ],
        "model": "m",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }
    packed = orjson.loads(openai_answer(vectors, "m", "base64", 7))["data"][0]["embedding"]
    assert list(struct.unpack("<2f", base64.b64decode(packed))) == [0.5, -1.25]
