"""Prompt templates of `llm` nodes: `{field}` placeholders filled from the workflow state.

The Control Tower's documents write templates in `str.format` style ("...:\n\n{chunk}"). Calling
`str.format` on a manifest's text would also allow `{document.__class__.__mro__}`, `{items[0]}`
and `{x:>999999999}` (attribute walks, indexing, a format spec that allocates gigabytes), so the
template is parsed once when the module is set up and only bare names are accepted; rendering
then only concatenates. Values are never parsed again: a `{...}` inside a state value is text.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import Any

import orjson

from fd2.serving.errors import ConfigError

LIST_SEPARATOR = "\n\n"
"""How a list value is written into a prompt (the earlier front door joined summaries so)."""


class PromptTemplate:
    """A checked template: literal text and the state fields it names, in order."""

    __slots__ = ("_parts", "fields")

    def __init__(self, text: str, where: str) -> None:
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(Formatter().parse(text))
        except ValueError as exc:
            raise ConfigError(f"{where}: prompt_template is not a valid template ({exc})") from None
        for literal, name, spec, conversion in parsed:
            if name is not None:
                _check_placeholder(name, spec, conversion, where)
            parts.append((literal, name))
        self._parts = tuple(parts)
        self.fields = frozenset(name for _, name in parts if name is not None)

    def render(self, values: Mapping[str, Any]) -> str:
        out: list[str] = []
        for literal, name in self._parts:
            out.append(literal)
            if name is not None:
                out.append(as_text(values.get(name)))
        return "".join(out)


def _check_placeholder(name: str, spec: str | None, conversion: str | None, where: str) -> None:
    if not name.isidentifier():
        # `{}`, `{0}`, `{a.b}`, `{a[0]}`: positional fields, attribute and index access.
        raise ConfigError(
            f"{where}: prompt_template placeholder {{{name}}} is not allowed: "
            "only {state_field} names (no attributes, indexes or positions)"
        )
    if spec or conversion:
        raise ConfigError(
            f"{where}: prompt_template placeholder {{{name}}} has a conversion or format spec: "
            "only plain {state_field} placeholders are allowed"
        )


def as_text(value: Any) -> str:
    """A state value as prompt text: strings as they are, lists one item per paragraph."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return LIST_SEPARATOR.join(as_text(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()
