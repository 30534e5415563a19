"""One prompt version, checked and compiled once: its templates, its input schema.

A version is checked entirely when it is created (or its manifest loaded): templates parse, ask
for no `_` attribute, name only declared variables when an input schema declares them; the
input and output schemas are valid JSON Schema; parameters are known ones. Rendering then only
validates the variables and runs the compiled templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from fd2.prompts.errors import PromptDefinitionError, PromptInputError, PromptTemplateError
from fd2.prompts.models import PARAMETERS, PromptVersion
from fd2.prompts.sandbox import (
    PromptEnvironment,
    RenderBudget,
    render_messages,
    template_names,
    unsafe_names,
)
from fd2.structured.validator import Schema, SchemaError

_ENVIRONMENT: Final = PromptEnvironment(RenderBudget())
"""One sandbox for every version: rendering is synchronous, so renders never overlap."""
_VARIABLES_MAX: Final = 64


@dataclass(frozen=True, slots=True)
class Rendered:
    messages: list[dict[str, str]]
    version: CompiledVersion


class CompiledVersion:
    __slots__ = ("_defaults", "_input", "_templates", "number", "output", "prompt_id", "source")

    def __init__(self, prompt_id: str, number: int, source: PromptVersion) -> None:
        self.prompt_id = prompt_id
        self.number = number
        self.source = source
        # Number 0: a version being created, checked before it is given its number.
        where = f"prompt {prompt_id!r} " + (f"version {number}" if number else "new version")
        if not source.messages:
            raise PromptDefinitionError(
                f"{where}: a version needs at least one message.", param="messages"
            )
        unknown = sorted(set(source.parameters) - PARAMETERS)
        if unknown:
            raise PromptDefinitionError(
                f"{where}: unknown parameters {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(PARAMETERS))}).",
                param="parameters",
            )
        self._input = _schema(source.input_schema, f"{where} input_schema", "input_schema")
        self.output = _schema(source.output_schema, f"{where} output_schema", "output_schema")
        declared = _declared(source.input_schema)
        self._defaults = {
            name: spec["default"]
            for name, spec in ((source.input_schema or {}).get("properties") or {}).items()
            if isinstance(spec, Mapping) and "default" in spec
        }
        templates = {}
        for index, message in enumerate(source.messages):
            at = f"{where} messages[{index}]"
            try:
                tree, names = template_names(_ENVIRONMENT, message.content)
            except TemplateSyntaxError as exc:
                raise PromptDefinitionError(
                    f"{at}: template syntax error on line {exc.lineno}: {exc.message}",
                    param=f"messages[{index}].content",
                ) from None
            unsafe = unsafe_names(tree)
            if unsafe:
                raise PromptDefinitionError(
                    f"{at}: the template reaches for {unsafe[0]!r}: attributes starting with '_' "
                    "are not available.",
                    param=f"messages[{index}].content",
                )
            if declared is not None and names - declared:
                raise PromptDefinitionError(
                    f"{at}: the template uses {', '.join(sorted(names - declared))}, which the "
                    "input schema does not declare.",
                    param=f"messages[{index}].content",
                )
            templates[index] = _ENVIRONMENT.from_string(message.content)
        self._templates = templates

    @property
    def _label(self) -> str:
        return f"Prompt {self.prompt_id!r} version {self.number}"

    def render(self, variables: Mapping[str, Any] | None) -> Rendered:
        given = dict(variables or {})
        if len(given) > _VARIABLES_MAX:
            raise PromptInputError(
                f"At most {_VARIABLES_MAX} variables are accepted.", param="prompt.variables"
            )
        values = {**self._defaults, **given}
        if self._input is not None:
            errors = self._input.errors(values)
            if errors:
                raise PromptInputError(
                    f"The variables of {self._label} do not match its input schema: "
                    + "; ".join(errors),
                    param="prompt.variables",
                )
        try:
            texts = render_messages(_ENVIRONMENT, self._templates, values)
        except UndefinedError as exc:
            raise PromptTemplateError(
                f"{self._label}: {_undefined(exc)}.",
                param="prompt.variables",
            ) from None
        except SecurityError as exc:
            raise PromptTemplateError(
                f"{self._label}: the template was stopped by the sandbox: "
                f"{_first_line(exc).rstrip('.')}.",
                param="prompt",
            ) from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise PromptTemplateError(
                f"{self._label}: the template failed ({type(exc).__name__}).",
                param="prompt",
            ) from None
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": texts[i]}
            for i, m in enumerate(self.source.messages)
        ]
        return Rendered(messages, self)


def _schema(source: Mapping[str, Any] | None, where: str, param: str) -> Schema | None:
    if source is None:
        return None
    try:
        return Schema(source)
    except SchemaError as exc:
        raise PromptDefinitionError(
            f"{where} is not a valid JSON Schema: {exc}", param=param
        ) from None


def _declared(schema: Mapping[str, Any] | None) -> set[str] | None:
    """Variables an input schema declares (None: it does not restrict them)."""
    if not schema or not isinstance(schema.get("properties"), Mapping):
        return None
    if schema.get("additionalProperties", True) is not False:
        return None
    return set(schema["properties"])


def _undefined(exc: UndefinedError) -> str:
    # Jinja's message is "'name' is undefined" (or "... has no attribute 'x'"): names only.
    text = _first_line(exc)
    return (
        f"the template uses an undefined variable or attribute ({text})"
        if text
        else "an undefined variable"
    )


def _first_line(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:200]
