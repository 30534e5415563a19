"""The sandbox: escapes refused when a version is created and again when it renders; memory and
time bounded; messages name the problem without a stack."""

from __future__ import annotations

import pytest

from fd2.prompts.compiled import CompiledVersion
from fd2.prompts.errors import PromptDefinitionError, PromptTemplateError
from fd2.prompts.models import PromptMessage, PromptVersion


def compiled(template: str) -> CompiledVersion:
    return CompiledVersion(
        "t", 1, PromptVersion(messages=[PromptMessage(role="user", content=template)])
    )


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ x.__init__.__globals__ }}",
        "{{ x['__class__'] }}",
        "{{ self.__init__.__globals__ }}",
        "{{ config.__class__ }}",
        "{% set y = x.__class__ %}",
    ],
)
def test_escapes_are_refused_when_the_version_is_made(template: str) -> None:
    with pytest.raises(PromptDefinitionError) as caught:
        compiled(template)
    assert caught.value.status == 400
    assert "attributes starting with '_'" in caught.value.message


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("{{ x|attr('__class__') }}", "unsafe"),
        ("{{ (x|attr('__cla' ~ 'ss__')).__name__ }}", "_"),
        ("{{ 'a' * 100000000 }}", "repetition"),
        ("{{ [1] * 100000000 }}", "repetition"),
        ("{{ '%999999999s' % x }}", "format width"),
        ("{{ 'a'.ljust(999999999) }}", "unsafe"),
        ("{{ '{:>999999999}'.format(x) }}", "version 1"),
        ("{{ 'a'|center(999999999) }}", "width"),
        ("{{ 'a'|indent(999999999) }}", "width"),
        ("{{ 'a'|format(x) }}", "not available"),
        ("{{ 9 ** 999999 }}", "exponent"),
        ("{% for i in range(1000000) %}{% endfor %}", "range"),
        (
            "{% for i in range(9999) %}{% for j in range(9999) %}{{ i }}{% endfor %}{% endfor %}",
            "longer",
        ),
        (
            "{% for i in range(9999) %}{% for j in range(9999) %}{% if x[0] %}{% endif %}"
            "{% endfor %}{% endfor %}",
            "ms",
        ),
        ("{{ x.append(1) }}", "unsafe"),
    ],
)
def test_the_sandbox_stops_what_renders(template: str, says: str) -> None:
    try:
        version = compiled(template)
    except PromptDefinitionError as exc:
        assert "_" in exc.message
        return
    with pytest.raises(PromptTemplateError) as caught:
        version.render({"x": ["s"]})
    assert caught.value.status == 400
    assert says in caught.value.message
    assert "Traceback" not in caught.value.message


def test_namespace_cycler_joiner_lipsum_are_not_offered() -> None:
    for name in ("namespace", "cycler", "joiner", "lipsum"):
        with pytest.raises(PromptTemplateError):
            compiled("{{ " + name + "() }}").render({})
