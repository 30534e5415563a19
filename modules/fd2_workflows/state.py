"""The workflow state: `state_schema` checked at set-up, a caller's initial state checked per run.

`state_schema` maps a field to a type name (the Control Tower's sample writes `"document":
"string"`, `"chunks": "array"`) or to `{"type", "required", "default"}`. A field that no node
writes is an input: the caller must give it, unless it says `"required": false` or has a
`default`. Missing optional fields start empty ("" / [] / {} / 0 / false), as the earlier front
door started its state. `metadata` belongs to the run (what ran, when); a caller cannot set it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final

from fd2.serving.errors import BadRequest, ConfigError

METADATA: Final = "metadata"
# Request fields that steer the run rather than seed the state.
STREAM: Final = "stream"
PARAMS: Final = "workflow_params"
_CONTROL: Final = frozenset({STREAM, PARAMS})
MAX_DEPTH: Final = 64
"""The deepest a state value may nest. orjson reads 1024 levels and writes only 255: a value
deeper than it can write would fail the answer (or a prompt) after the run, as a 500. State
values are documents, lists of chunks and small verdicts; 64 levels is far more than they need."""

_TYPES: Final[dict[str, tuple[type, ...] | None]] = {
    "string": (str,),
    "str": (str,),
    "array": (list,),
    "list": (list,),
    "object": (dict,),
    "dict": (dict,),
    "number": (int, float),
    "float": (int, float),
    "integer": (int,),
    "int": (int,),
    "boolean": (bool,),
    "bool": (bool,),
    "any": None,
}
_EMPTY: Final[dict[str, Any]] = {
    "string": "",
    "array": [],
    "object": {},
    "number": 0,
    "integer": 0,
    "boolean": False,
}
_CANONICAL: Final = {
    "str": "string",
    "list": "array",
    "dict": "object",
    "float": "number",
    "int": "integer",
    "bool": "boolean",
}


class Field:
    __slots__ = ("default", "has_default", "kinds", "name", "required", "type_name")

    def __init__(self, name: str, raw: Any) -> None:
        spec = raw if isinstance(raw, Mapping) else {"type": raw}
        type_name = spec.get("type", "any")
        if not isinstance(type_name, str) or type_name.lower() not in _TYPES:
            raise ConfigError(
                f"state_schema.{name}: unknown type {type_name!r} "
                f"(one of {', '.join(sorted(_TYPES))})"
            )
        unknown = set(spec) - {"type", "required", "default", "description"}
        if unknown:
            raise ConfigError(f"state_schema.{name}: unknown key(s) {', '.join(sorted(unknown))}")
        required = spec.get("required")
        if required is not None and not isinstance(required, bool):
            raise ConfigError(f"state_schema.{name}.required must be true or false")
        lowered = type_name.lower()
        self.name = name
        self.type_name = _CANONICAL.get(lowered, lowered)
        self.kinds = _TYPES[lowered]
        self.required: bool | None = required
        self.has_default = "default" in spec
        self.default = spec.get("default", _EMPTY.get(self.type_name))
        if self.default is not None and not self.accepts(self.default):
            raise ConfigError(f"state_schema.{name}.default is not of type {self.type_name}")

    def accepts(self, value: Any) -> bool:
        if self.kinds is None:
            return True
        if isinstance(value, bool) and bool not in self.kinds:
            return False
        return isinstance(value, self.kinds)


class StateSchema:
    """The declared fields; an empty schema declares nothing and accepts any field."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.fields = {name: Field(name, spec) for name, spec in raw.items() if name != METADATA}
        self.open = not self.fields
        self._inputs: frozenset[str] = frozenset()

    def declares(self, name: str) -> bool:
        return self.open or name in self.fields

    def check_written(self, names: Iterable[str], where: str) -> None:
        for name in names:
            if name == METADATA or not self.declares(name):
                raise ConfigError(f"{where} writes {name!r}, which state_schema does not declare")

    def set_written(self, written: Iterable[str]) -> None:
        """Fields no node writes are inputs (required unless the schema says otherwise)."""
        written = frozenset(written)
        self._inputs = frozenset(
            name
            for name, field in self.fields.items()
            if field.required
            or (field.required is None and not field.has_default and name not in written)
        )

    @property
    def inputs(self) -> frozenset[str]:
        return self._inputs

    def initial(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The run's first state from a request body; BadRequest names the field at fault."""
        state: dict[str, Any] = {}
        for name, value in body.items():
            if name in _CONTROL:
                continue
            if name == METADATA:
                raise BadRequest("'metadata' is set by the workflow, not by the caller", param=name)
            field = self.fields.get(name)
            if field is None:
                if not self.open:
                    raise BadRequest(
                        f"'{name}' is not a field of this workflow's state "
                        f"(fields: {', '.join(self.fields)})",
                        param=name,
                    )
            elif not field.accepts(value):
                raise BadRequest(f"'{name}' must be of type {field.type_name}", param=name)
            if not within_depth(value):
                raise BadRequest(
                    f"'{name}' is nested more than {MAX_DEPTH} levels deep", param=name
                )
            state[name] = value
        for name, field in self.fields.items():
            if name in state:
                continue
            if name in self._inputs:
                raise BadRequest(f"'{name}' is required", param=name)
            state[name] = copy.deepcopy(field.default)
        params = body.get(PARAMS)
        if params is not None and not isinstance(params, dict):
            raise BadRequest(f"'{PARAMS}' must be an object", param=PARAMS)
        return state


def within_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when `value` holds at most `limit` lists and objects one inside another
    (iterative: a deep value cannot exhaust the stack while it is being measured)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return False
        pending.extend((child, depth + 1) for child in children)
    return True
