"""Rendering prompt versions: property tests (values are data, never template; output bounded)
and the input schema's defaults and validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd2.prompts.compiled import CompiledVersion
from fd2.prompts.errors import PromptInputError, PromptTemplateError
from fd2.prompts.models import PromptMessage, PromptVersion
from fd2.prompts.sandbox import MAX_OUTPUT


def version(*contents: str, input_schema: dict[str, Any] | None = None) -> CompiledVersion:
    messages = [PromptMessage(role="user", content=c) for c in contents]
    return CompiledVersion("t", 1, PromptVersion(messages=messages, input_schema=input_schema))


def render(template: str, **variables: Any) -> str:
    return version(template).render(variables).messages[0]["content"]


_PLAIN = st.text().filter(lambda t: not any(m in t for m in ("{{", "{%", "{#", "%}", "}}", "#}")))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_PLAIN)
def test_text_without_jinja_syntax_renders_as_itself(text: str) -> None:
    # Jinja writes every line break of a template as "\n" (values keep theirs).
    assert render(text) == text.replace("\r\n", "\n").replace("\r", "\n")


@given(st.text())
def test_a_value_is_data_never_template(value: str) -> None:
    # A variable holding `{{ ... }}` or `{% ... %}` is printed, not evaluated.
    assert render("<{{ v }}>", v=value) == f"<{value}>"


@given(_JSON)
@settings(max_examples=200)
def test_any_json_value_renders_or_fails_with_a_named_400(value: Any) -> None:
    template = "{% for k in v %}{{ k }},{% endfor %}|{{ v }}|{{ v|length if v is iterable else v }}"
    try:
        text = render(template, v=value)
    except PromptTemplateError as exc:
        assert exc.status == 400
        assert "Prompt 't' version 1" in exc.message
    else:
        assert len(text) <= MAX_OUTPUT


@given(st.integers(min_value=0, max_value=3 * MAX_OUTPUT))
def test_output_is_bounded_whatever_the_repetition(n: int) -> None:
    try:
        text = render("{% for i in range(n // 1000) %}{{ 'x' * 1000 }}{% endfor %}", n=n)
    except PromptTemplateError as exc:
        assert "sandbox" in exc.message
    else:
        assert len(text) <= MAX_OUTPUT


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "count": {"type": "integer", "minimum": 0, "default": 3},
        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
    },
    "required": ["name"],
}


def test_defaults_fill_missing_variables() -> None:
    rendered = version("{{ name }} {{ count }} {{ tags|join(',') }}", input_schema=SCHEMA)
    assert rendered.render({"name": "a"}).messages[0]["content"] == "a 3 "


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({}, '"name" is a required property'),
        ({"name": 5}, '$.name: 5 is not of type "string"'),
        ({"name": "a", "count": -1}, "$.count: -1 is less than the minimum of 0"),
        ({"name": "a", "tags": [1]}, "$.tags[0]"),
    ],
)
def test_variables_are_validated_by_the_input_schema(variables: dict[str, Any], says: str) -> None:
    with pytest.raises(PromptInputError) as caught:
        version("{{ name }}", input_schema=SCHEMA).render(variables)
    assert caught.value.status == 400
    assert says in caught.value.message
    assert caught.value.param == "prompt.variables"


def test_an_undefined_name_is_a_named_400() -> None:
    with pytest.raises(PromptTemplateError) as caught:
        render("{{ missing }}")
    assert "'missing' is undefined" in caught.value.message


def test_the_developer_role_goes_upstream_as_system() -> None:
    compiled = CompiledVersion(
        "t", 1, PromptVersion(messages=[PromptMessage(role="developer", content="d")])
    )
    assert compiled.render({}).messages == [{"role": "system", "content": "d"}]
