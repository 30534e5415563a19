"""JSON Schema (as OpenAI's `json_schema` and tool `parameters` carry it) to Gemini's `Schema`.

Gemini's `responseSchema` and function `parameters` take a subset of OpenAPI 3.0: `type` in upper
case, `nullable` instead of a "null" type, `anyOf`, `enum` of strings, `properties`/`required`,
`items`, bounds on lengths, items and numbers, `format`, `description`, `title`, `default`,
`example` and `propertyOrdering`. References (`$ref` to `$defs`/`definitions`) are inlined; a
keyword the subset cannot express goes to the caller's `unsupported` (a 400 naming it under the
`refuse` policy, left out under `drop`), never rewritten into something that means otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

Unsupported = Callable[[str, str], None]
"""Called with (param, why) for what cannot be expressed; raises under the refuse policy."""

_TYPES: Final = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
# Kept as they are: same name, same meaning in Gemini's Schema.
_COPIED: Final = frozenset(
    {
        "description",
        "title",
        "default",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "pattern",
    }
)
# Annotations that constrain nothing: left out without a word.
_IGNORED: Final = frozenset({"$schema", "$id", "$comment", "$defs", "definitions", "examples"})
_FORMATS: Final = {
    "STRING": frozenset({"enum", "date-time"}),
    "INTEGER": frozenset({"int32", "int64"}),
    "NUMBER": frozenset({"float", "double"}),
}
_MAX_DEPTH: Final = 64


def gemini_schema(
    schema: Mapping[str, Any], param: str, unsupported: Unsupported
) -> dict[str, Any]:
    """`schema` in Gemini's terms; `param` names it in refusals (`tools[0].function.parameters`)."""
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            defs.update({f"#/{key}/{name}": value for name, value in found.items()})
    return _Converter(defs, param, unsupported).convert(schema, (), 0)


class _Converter:
    __slots__ = ("_defs", "_param", "_unsupported")

    def __init__(self, defs: dict[str, Any], param: str, unsupported: Unsupported) -> None:
        self._defs = defs
        self._param = param
        self._unsupported = unsupported

    def _refuse(self, why: str) -> None:
        self._unsupported(self._param, f": Gemini's schema cannot express {why}")

    def convert(self, schema: Any, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            self._refuse(f"a schema nested deeper than {_MAX_DEPTH} levels")
            return {}
        if schema is True or schema == {}:
            self._refuse("a schema that accepts any value")
            return {}
        if not isinstance(schema, Mapping):
            self._refuse("a schema that is not an object")
            return {}
        ref = schema.get("$ref")
        if ref is not None:
            return self._inline(schema, ref, refs, depth)
        out: dict[str, Any] = {}
        nullable = self._type(schema, out)
        for key, value in schema.items():
            self._keyword(key, value, schema, out, refs, depth)
        if nullable:
            out["nullable"] = True
        if "type" not in out and "properties" in out:
            out["type"] = "OBJECT"
        return out

    def _inline(
        self, schema: Mapping[str, Any], ref: Any, refs: tuple[str, ...], depth: int
    ) -> dict[str, Any]:
        if not isinstance(ref, str) or ref not in self._defs:
            self._refuse(f"the reference {ref!r} (only local $defs/definitions are inlined)")
            return {}
        if ref in refs:
            self._refuse(f"the recursive reference {ref!r}")
            return {}
        target = self._defs[ref]
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        merged = {**target, **siblings} if isinstance(target, Mapping) else target
        return self.convert(merged, (*refs, ref), depth + 1)

    def _type(self, schema: Mapping[str, Any], out: dict[str, Any]) -> bool:
        """Sets `out["type"]`; True when "null" is one of the types."""
        declared = schema.get("type")
        if declared is None:
            return False
        names = declared if isinstance(declared, list) else [declared]
        nullable = "null" in names
        kinds = [name for name in names if name != "null"]
        if len(kinds) != 1 or kinds[0] not in _TYPES:
            self._refuse(f"the type {declared!r}")
            return nullable
        out["type"] = _TYPES[kinds[0]]
        return nullable

    def _keyword(
        self,
        key: str,
        value: Any,
        schema: Mapping[str, Any],
        out: dict[str, Any],
        refs: tuple[str, ...],
        depth: int,
    ) -> None:
        if key == "type" or key in _IGNORED:
            return
        if key in _COPIED:
            out[key] = value
        elif key == "properties" and isinstance(value, Mapping):
            out["properties"] = {
                name: self.convert(sub, refs, depth + 1) for name, sub in value.items()
            }
            # Gemini orders an object's keys alphabetically unless told the schema's order.
            out["propertyOrdering"] = list(value)
        elif key == "required" and isinstance(value, list):
            out["required"] = value
        elif key == "items":
            out["items"] = self.convert(value, refs, depth + 1)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            self._any_of(value, out, refs, depth)
        elif key == "allOf" and isinstance(value, list) and len(value) == 1:
            out.update(self.convert(value[0], refs, depth + 1))
        elif key == "enum" and isinstance(value, list):
            self._enum(value, out)
        elif key == "const":
            self._enum([value], out)
        elif key == "format":
            self._format(value, schema, out)
        elif key == "additionalProperties":
            if value is not False:  # False is what Gemini does anyway: no keys beyond properties
                self._refuse("additionalProperties other than false")
        elif key == "example":
            out["example"] = value
        else:
            self._refuse(f"the keyword {key!r}")

    def _any_of(
        self, branches: list[Any], out: dict[str, Any], refs: tuple[str, ...], depth: int
    ) -> None:
        # A {"type": "null"} branch (how Optional[X] is written) is Gemini's `nullable`.
        kept = [sub for sub in branches if not (isinstance(sub, Mapping) and _is_null(sub))]
        if len(kept) < len(branches):
            out["nullable"] = True
        converted = [self.convert(sub, refs, depth + 1) for sub in kept]
        if len(converted) == 1:
            out.update(converted[0])
        elif converted:
            # For generating one value, "exactly one branch" (oneOf) and "at least one" ask the
            # same.
            out["anyOf"] = converted

    def _enum(self, values: list[Any], out: dict[str, Any]) -> None:
        if None in values:
            out["nullable"] = True
            values = [value for value in values if value is not None]
        strings = [value for value in values if isinstance(value, str)]
        if len(strings) != len(values):
            self._refuse("an enum or const of values other than strings")
            return
        out["type"] = "STRING"
        out["enum"] = strings
        out["format"] = "enum"

    def _format(self, value: Any, schema: Mapping[str, Any], out: dict[str, Any]) -> None:
        declared = schema.get("type")
        kind = _TYPES.get(declared) if isinstance(declared, str) else None
        if kind is not None and value in _FORMATS.get(kind, ()):
            out["format"] = value
        elif "enum" not in schema and "const" not in schema:
            self._refuse(f"the format {value!r}")


def _is_null(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "null" and len(schema) == 1
