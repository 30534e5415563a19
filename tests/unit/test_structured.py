"""fd2.structured: schema checks (refused schemas, no remote fetch), errors with paths, and the
re-ask loop against a scripted chat function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from fd2.structured.reask import parse, structured_chat, with_schema
from fd2.structured.validator import MAX_ERRORS, Schema, SchemaError, compiled

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "nonsense"},
        {"properties": 3},
        {"type": "string", "pattern": "("},
        {"$schema": "http://example.com/my-meta"},
        {"$ref": "http://127.0.0.1:1/schema.json"},
        {"properties": {"a": {"$ref": "https://example.com/a.json"}}},
    ],
)
def test_invalid_or_remote_schemas_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        Schema(schema)


def test_errors_name_their_path_and_are_bounded() -> None:
    schema = compiled({"type": "array", "items": PERSON})
    errors = schema.errors([{"name": 1}] * 20)
    assert len(errors) == MAX_ERRORS
    assert errors[0].startswith("$[0]")
    assert schema.is_valid([{"name": "a", "age": 1}])


def test_local_refs_work() -> None:
    schema = Schema(
        {"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}}
    )
    assert schema.errors({"a": "x"}) == ['$.a: "x" is not of type "integer"']


@pytest.mark.parametrize(
    ("text", "value"),
    [('{"a": 1}', {"a": 1}), ('```json\n{"a": 1}\n```', {"a": 1}), ("```\n[1]\n```", [1])],
)
def test_parse_unwraps_fences(text: str, value: Any) -> None:
    assert parse(text) == (value, None)


def test_parse_names_bad_json() -> None:
    value, problem = parse("not json")
    assert (
        value is None
        and problem is not None
        and problem.startswith("$: the answer is not valid JSON")
    )


def _answer(text: str) -> dict[str, Any]:
    return {
        "model": "m",
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


class Script:
    """A chat function answering the texts in order, keeping what it was asked."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.asked: list[dict[str, Any]] = []

    async def __call__(self, body: dict[str, Any]) -> Mapping[str, Any]:
        self.asked.append(body)
        return _answer(self.texts.pop(0))


async def test_a_valid_first_answer_is_one_attempt() -> None:
    script = Script('{"name": "a", "age": 1}')
    result = await structured_chat(script, {"messages": []}, compiled(PERSON))
    assert (result.validated, result.attempts, result.value) == (True, 1, {"name": "a", "age": 1})
    assert script.asked[0]["response_format"]["json_schema"]["schema"] == PERSON


async def test_reasks_quote_the_errors_and_sum_usage() -> None:
    script = Script('{"name": 5}', "nope", '{"name": "a", "age": 1}')
    body = {"messages": [{"role": "user", "content": "who?"}]}
    result = await structured_chat(script, body, compiled(PERSON), max_attempts=3)
    assert (result.validated, result.attempts) == (True, 3)
    assert result.usage == {"prompt_tokens": 30, "completion_tokens": 15}
    second = script.asked[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"name": 5}'}
    assert '$.name: 5 is not of type "string"' in second[-1]["content"]
    assert '"age" is a required property' in second[-1]["content"]
    assert "not valid JSON" in script.asked[2]["messages"][-1]["content"]


async def test_attempts_are_bounded_and_the_result_says_invalid() -> None:
    script = Script(*['{"name": 5}'] * 5)
    result = await structured_chat(script, {"messages": []}, compiled(PERSON), max_attempts=2)
    assert (result.validated, result.attempts) == (False, 2)
    assert result.errors


def test_without_native_support_the_schema_goes_into_the_prompt() -> None:
    body = with_schema(
        {"messages": [{"role": "user", "content": "q"}], "response_format": {"type": "text"}},
        compiled(PERSON),
        "p",
        native=False,
    )
    assert "response_format" not in body
    assert body["messages"][0]["role"] == "system"
    assert '"required":["name","age"]' in body["messages"][0]["content"]
