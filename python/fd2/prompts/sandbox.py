"""The Jinja environment prompts render in, and its bounds.

`ImmutableSandboxedEnvironment`: no attribute starting with `_`, no mutation of lists or dicts,
calls only of safe callables. On top of that, because a template must not take the worker's
memory or time: the output is counted as it is made and refused past `MAX_OUTPUT` characters;
every call, attribute and item lookup checks the render's deadline; string arguments and
results of `+`, `*`, `%` and `**` are bounded; methods and filters that pad to a width the
template chooses (`center`, `ljust`, `format`, ...) are refused or bounded; `namespace` (the
one way to carry a growing value across loop iterations) is not offered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT: Final = 256 * 1024
"""Characters one render may produce (all messages of a version together)."""
MAX_RENDER_S: Final = 0.05
MAX_RANGE: Final = 10_000
_PADDING_METHODS: Final = frozenset(
    {"format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs"}
)
_WIDTH_FILTERS: Final = ("center", "indent", "wordwrap", "truncate")
_PERCENT_WIDTH: Final = re.compile(r"%[-+ #0]*(\d+)?(?:\.(\d+))?")


class RenderBudget:
    """The deadline of the render in progress (one render at a time per thread: set by
    `render` before it starts)."""

    __slots__ = ("deadline",)

    def __init__(self) -> None:
        self.deadline = 0.0

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise SecurityError(f"the render took longer than {MAX_RENDER_S * 1000:g} ms")


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple | bytes) and len(value) > MAX_OUTPUT:
        raise SecurityError(f"a value grew past {MAX_OUTPUT} characters")
    return value


class PromptEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, budget: RenderBudget) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.budget = budget
        self.globals.pop("namespace", None)
        self.globals.pop("cycler", None)
        self.globals.pop("joiner", None)
        self.globals.pop("lipsum", None)
        self.globals["range"] = _bounded_range
        for name in _WIDTH_FILTERS:
            self.filters[name] = _width_bounded(self.filters[name])
        self.filters["format"] = _refused("format")

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _PADDING_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.budget.check()
        for value in args:
            _sized(value)
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.budget.check()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.budget.check()
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.check()
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("an exponent above 64")
        if operator == "*":
            for a, b in ((left, right), (right, left)):
                if (
                    isinstance(a, str | list | tuple)
                    and isinstance(b, int)
                    and len(a) * b > MAX_OUTPUT
                ):
                    raise SecurityError(f"a repetition past {MAX_OUTPUT} characters")
        if operator == "%" and isinstance(left, str):
            for width, precision in _PERCENT_WIDTH.findall(left):
                if (width and int(width) > MAX_OUTPUT) or (
                    precision and int(precision) > MAX_OUTPUT
                ):
                    raise SecurityError(f"a format width past {MAX_OUTPUT}")
        return _sized(super().call_binop(context, operator, left, right))


def _bounded_range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise SecurityError(f"a range of more than {MAX_RANGE} items")
    return values


def _width_bounded(original: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[1:], *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_OUTPUT:
                raise SecurityError(f"a width past {MAX_OUTPUT}")
        return _sized(original(*args, **kwargs))

    # Jinja passes the environment or context to filters marked for it: keep the marks.
    for mark in ("jinja_pass_arg",):
        if hasattr(original, mark):
            setattr(bounded, mark, getattr(original, mark))
    return bounded


def _refused(name: str) -> Callable[..., Any]:
    def refused(*_: Any, **__: Any) -> Any:
        raise SecurityError(f"the {name!r} filter is not available in prompts")

    return refused


def unsafe_names(source_ast: nodes.Template) -> list[str]:
    """Attribute and item names starting with `_` that a template asks for (refused when a
    version is created: the sandbox would refuse them at every render anyway)."""
    found = []
    for node in source_ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        if name is not None and name.startswith("_"):
            found.append(name)
    return found


def template_names(environment: PromptEnvironment, source: str) -> tuple[nodes.Template, set[str]]:
    """The template's syntax tree and the variables it reads."""
    from jinja2 import meta

    tree = environment.parse(source)
    return tree, set(meta.find_undeclared_variables(tree)) - set(environment.globals)


def render_messages(
    environment: PromptEnvironment,
    templates: Mapping[int, Any],
    variables: Mapping[str, Any],
) -> dict[int, str]:
    """Each template rendered, within the budget: at most MAX_OUTPUT characters in all."""
    environment.budget.deadline = time.monotonic() + MAX_RENDER_S
    out: dict[int, str] = {}
    size = 0
    for index, template in templates.items():
        pieces = []
        for piece in template.generate(variables):
            size += len(piece)
            if size > MAX_OUTPUT:
                raise SecurityError(f"the rendered prompt is longer than {MAX_OUTPUT} characters")
            pieces.append(piece)
        environment.budget.check()
        out[index] = "".join(pieces)
    return out
