"""The analyze request shape: fields, options and their types named in 400s."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.serving.errors import BadRequest
from fd2_prompts.shapes import decode, with_confidence


def test_defaults_merge_under_the_items_own_options() -> None:
    item = decode({"prompt": "x", "options": {"model": "a"}}, {"model": "b", "cache_ttl": 5})
    assert item.options == {"model": "a", "cache_ttl": 5}
    assert item.format == "json"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ""}, "items[0].prompt"),
        ({"prompt": "x", "format": "csv"}, "items[0].format"),
        (
            {"prompt": "x", "options": {"include_confidence": "yes"}},
            "items[0].options.include_confidence",
        ),
        ({"prompt": "x", "options": {"cache_ttl": -1}}, "items[0].options.cache_ttl"),
        ({"prompt": "x", "options": {"cache_ttl": True}}, "items[0].options.cache_ttl"),
        ({"prompt": "x", "options": {"unknown": 1}}, "items[0].options.unknown"),
        ({"prompt": "x", "schema": []}, "items[0].schema"),
    ],
)
def test_bad_items_are_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode(body, where="items[0].")
    assert caught.value.param == param


def test_confidence_wraps_the_schema() -> None:
    wrapped = with_confidence({"type": "string"})
    assert wrapped["properties"]["data"] == {"type": "string"}
    assert wrapped["required"] == ["data", "confidence"]
