"""Edge conditions: when a conditional edge is taken, decided from the state after a step.

The Control Tower's documents write a condition as a name (`"condition": "needs_improvement"`);
fd2 reads a name as a state field and takes the edge when that field is truthy (a node sets it,
e.g. `extract_json` from a model's verdict). A leading `!` negates. The object form compares a
field with a value: `{"field": "score", "op": "lt", "value": 7}`. Conditions are data, never code.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from fd2.serving.errors import ConfigError

_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "contains": lambda field, value: value in field,
    "in": lambda field, value: field in value,
    "truthy": lambda field, _: bool(field),
    "falsy": lambda field, _: not field,
}


class Condition:
    __slots__ = ("_op", "_value", "field")

    def __init__(self, raw: str | Mapping[str, Any], where: str) -> None:
        field: Any
        if isinstance(raw, str):
            name = raw.strip()
            negated = name.startswith("!")
            field, op, value = name.lstrip("!").strip(), ("falsy" if negated else "truthy"), None
        else:
            unknown = set(raw) - {"field", "op", "value"}
            if unknown:
                raise ConfigError(f"{where}: unknown condition key(s) {', '.join(sorted(unknown))}")
            field, op, value = raw.get("field"), raw.get("op", "truthy"), raw.get("value")
        if not isinstance(field, str) or not field.isidentifier():
            raise ConfigError(f"{where}: a condition names a state field (got {field!r})")
        if op not in _OPS:
            raise ConfigError(f"{where}: unknown condition op {op!r} (one of {', '.join(_OPS)})")
        self.field = field
        self._op = _OPS[op]
        self._value = value

    def holds(self, state: Mapping[str, Any]) -> bool:
        try:
            return bool(self._op(state.get(self.field), self._value))
        except TypeError:
            return False  # e.g. "abc" < 3: a comparison that cannot be made does not hold
