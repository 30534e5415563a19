"""state_schema: types, which fields are inputs, what a caller may send."""

from __future__ import annotations

import pytest

from fd2.serving.errors import BadRequest, ConfigError
from fd2_workflows.state import MAX_DEPTH, StateSchema, within_depth

SUMMARIZER = {
    "document": "string",
    "chunks": "array",
    "summaries": "array",
    "final_summary": "string",
}


def schema(
    raw: dict, written: tuple[str, ...] = ("chunks", "summaries", "final_summary")
) -> StateSchema:
    parsed = StateSchema(raw)
    parsed.set_written(written)
    return parsed


def test_fields_no_node_writes_are_required_inputs() -> None:
    state = schema(SUMMARIZER)
    assert state.inputs == {"document"}
    assert state.initial({"document": "d", "workflow_params": {}, "stream": False}) == {
        "document": "d",
        "chunks": [],
        "summaries": [],
        "final_summary": "",
    }
    with pytest.raises(BadRequest) as missing:
        state.initial({})
    assert missing.value.param == "document"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"document": 1}, "document"),
        ({"document": "d", "chunks": "not a list"}, "chunks"),
        ({"document": "d", "other": 1}, "other"),
        ({"document": "d", "metadata": {}}, "metadata"),
        ({"document": "d", "workflow_params": []}, "workflow_params"),
    ],
)
def test_bad_input_names_the_field(body: dict, param: str) -> None:
    with pytest.raises(BadRequest) as refused:
        schema(SUMMARIZER).initial(body)
    assert refused.value.param == param


def test_object_form_required_default_and_strict_numbers() -> None:
    state = schema(
        {
            "n": {"type": "integer", "default": 2},
            "flag": {"type": "boolean", "required": False},
            "score": "number",
        },
        written=("score",),
    )
    assert state.inputs == frozenset()  # no writer, but a default / required: false
    assert state.initial({}) == {"n": 2, "flag": False, "score": 0}
    with pytest.raises(BadRequest):
        state.initial({"n": True})  # a boolean is not an integer
    assert state.initial({"n": 1, "score": 2.5})["score"] == 2.5


def test_unknown_types_and_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown type"):
        StateSchema({"x": "strnig"})
    with pytest.raises(ConfigError, match="unknown key"):
        StateSchema({"x": {"type": "string", "requird": True}})
    with pytest.raises(ConfigError, match="default"):
        StateSchema({"x": {"type": "integer", "default": "one"}})


def test_an_empty_schema_accepts_any_field() -> None:
    state = schema({}, written=())
    assert state.initial({"anything": [1]}) == {"anything": [1]}


def test_values_nested_past_the_limit_are_refused() -> None:
    schema = StateSchema({"extra": {"type": "any", "required": True}})
    schema.set_written(())
    value: object = 1
    for _ in range(MAX_DEPTH):
        value = [value]
    assert schema.initial({"extra": value})["extra"] == value
    with pytest.raises(BadRequest, match="nested") as caught:
        schema.initial({"extra": [value]})
    assert caught.value.param == "extra"
    assert within_depth({"a": [{"b": []}]}, 4) and not within_depth({"a": [{"b": []}]}, 3)
