"""Prompt templates: bare `{field}` names only, values never parsed again."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fd2.serving.errors import ConfigError
from fd2_workflows.templates import PromptTemplate, as_text


@pytest.mark.parametrize(
    "text",
    [
        "{document.__class__.__mro__}",
        "{document.__init__.__globals__}",
        "{chunks[0]}",
        "{0}",
        "{}",
        "{document!r}",
        "{document:>999999999}",
        "{document:{width}}",
        "unbalanced {document",
        "stray } brace",
    ],
)
def test_anything_but_a_bare_name_is_refused(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        PromptTemplate(text, "node 'x'")
    assert refused.value.message.startswith("node 'x': prompt_template")


def test_names_are_filled_and_braces_escaped() -> None:
    template = PromptTemplate("Summarize {{this}}:\n\n{chunk} ({n})", "node 'x'")
    assert template.fields == {"chunk", "n"}
    assert template.render({"chunk": "text", "n": 3}) == "Summarize {this}:\n\ntext (3)"


def test_values_are_text_never_templates() -> None:
    template = PromptTemplate("{chunk}", "node 'x'")
    hostile = "{chunk.__class__} {0} {{x}}"
    assert template.render({"chunk": hostile}) == hostile


def test_values_as_text() -> None:
    assert as_text(["a", "b"]) == "a\n\nb"
    assert as_text(None) == ""
    assert as_text(True) == "true"
    assert as_text({"k": 1}) == '{"k":1}'
    assert PromptTemplate("[{missing}]", "n").render({}) == "[]"


_PIECES = st.sampled_from(["{a}", "{b}", "{{", "}}", "{", "}", "{a.b}", "{0}", "{a!s}", "x", "\n"])


@given(st.lists(_PIECES, max_size=12).map("".join), st.text(max_size=20), st.text(max_size=20))
def test_an_accepted_template_renders_as_str_format_would(text: str, a: str, b: str) -> None:
    try:
        template = PromptTemplate(text, "n")
    except ConfigError:
        return  # refused: never rendered
    assert template.fields <= {"a", "b"}
    assert template.render({"a": a, "b": b}) == text.format(a=a, b=b)
