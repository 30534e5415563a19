"""The table behind every `--flag` and `FD2_*` variable: one entry per settings field.

A field's type, bounds, help text, group and metavar are written on the field itself
(`Annotated[int, msgspec.Meta(ge=1), SERVING("help", "METAVAR")]`); this module reads them once and
turns the text a user typed into the field's value, with errors that name the flag or the variable
and what was expected (`--port: expected an integer from 0 to 65535, got '70000'`).
"""

from __future__ import annotations

import math
import types
from collections.abc import Collection, Mapping
from functools import cache
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import msgspec

ENV_PREFIX: Final = "FD2_"
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_SHOWN_MAX: Final = 60


class SettingsError(ValueError):
    """A value that does not fit its setting; the message names the flag or the variable."""


class Group:
    """A group of settings in `--help`; calling it describes one field of the group."""

    __slots__ = ("description", "title")

    def __init__(self, title: str, description: str) -> None:
        self.title = title
        self.description = description

    def __call__(self, help: str, metavar: str | None = None) -> msgspec.Meta:
        """The field's help text (shown by `--help`), this group, and the field's metavar."""
        extra: dict[str, str] = {"group": self.title}
        if metavar is not None:
            extra["metavar"] = metavar
        return msgspec.Meta(description=help, extra=extra)


class FieldSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One setting as the command line and the environment see it."""

    name: str
    kind: Literal["str", "int", "float", "bool", "choice", "list"]
    optional: bool
    """None is a value (an empty flag or variable gives it)."""
    default: Any
    help: str
    group: str
    metavar: str
    choices: tuple[str, ...] = ()
    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return env_name(self.name)


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


@cache
def field_specs(cls: type[msgspec.Struct]) -> tuple[FieldSpec, ...]:
    """The settings of `cls`, in field order; every field must be described by a `Group`."""
    return tuple(_spec(field) for field in msgspec.structs.fields(cls))


def _spec(field: msgspec.structs.FieldInfo) -> FieldSpec:
    base, metas = _unwrap(field.type)
    optional = False
    if get_origin(base) in (Union, types.UnionType):
        members = [arg for arg in get_args(base) if arg is not type(None)]
        if len(members) != 1:
            raise TypeError(f"setting {field.name}: only `T | None` unions are supported")
        optional = True
        base, inner = _unwrap(members[0])
        metas += inner
    described = [meta for meta in metas if meta.description]
    if len(described) != 1 or not isinstance(described[0].extra, dict):
        raise TypeError(f"setting {field.name} needs one Group(...)(help) on its type")
    extra: dict[str, Any] = described[0].extra
    kind, choices = _kind(field.name, base)
    bounds = {
        name: getattr(meta, name)
        for meta in metas
        for name in ("gt", "ge", "le")
        if getattr(meta, name) is not None
    }
    return FieldSpec(
        name=field.name,
        kind=kind,
        optional=optional,
        default=field.default,
        help=described[0].description or "",
        group=extra["group"],
        metavar=extra.get("metavar") or _METAVARS[kind],
        choices=choices,
        **bounds,
    )


_METAVARS: Final = {
    "str": "VALUE",
    "int": "N",
    "float": "SECONDS",
    "bool": "",
    "choice": "",
    "list": "A,B",
}


def _unwrap(annotation: Any) -> tuple[Any, list[msgspec.Meta]]:
    metas: list[msgspec.Meta] = []
    while get_origin(annotation) is Annotated:
        annotation, *extras = get_args(annotation)
        metas += [extra for extra in extras if isinstance(extra, msgspec.Meta)]
    return annotation, metas


def _kind(
    name: str, base: Any
) -> tuple[Literal["str", "int", "float", "bool", "choice", "list"], tuple[str, ...]]:
    if base is bool:
        return "bool", ()
    if base is int:
        return "int", ()
    if base is float:
        return "float", ()
    if base is str:
        return "str", ()
    if get_origin(base) is Literal:
        return "choice", tuple(str(choice) for choice in get_args(base))
    if get_origin(base) is tuple and get_args(base) == (str, ...):
        return "list", ()
    raise TypeError(f"setting {name}: type {base!r} has no text form")


def expected(spec: FieldSpec) -> str:
    """What a value of this setting looks like, for error messages."""
    if spec.kind == "bool":
        return "true or false (or 1/0, yes/no, on/off)"
    if spec.kind == "choice":
        return "one of " + ", ".join(spec.choices)
    if spec.kind == "list":
        return "a comma-separated list"
    if spec.kind == "str":
        return "a value"
    noun = "an integer" if spec.kind == "int" else "a number"
    if spec.ge is not None and spec.le is not None:
        return f"{noun} from {_number(spec.ge)} to {_number(spec.le)}"
    if spec.gt == 0 and spec.le is None:
        return "a positive " + noun.split()[-1]
    parts = [
        f"{word} {_number(bound)}"
        for word, bound in (("above", spec.gt), ("of at least", spec.ge), ("of at most", spec.le))
        if bound is not None
    ]
    return " ".join([noun, *parts])


def parse_text(spec: FieldSpec, text: str, source: str) -> Any:
    """The value of `text` given for `spec` by `source` (a flag or a variable name)."""
    stripped = text.strip()
    if spec.kind == "list":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if spec.optional and not stripped:
        return None
    value: Any
    if spec.kind == "str":
        value = text if stripped else None
    elif spec.kind == "choice":
        value = next((c for c in spec.choices if c.lower() == stripped.lower()), None)
    elif spec.kind == "bool":
        lowered = stripped.lower()
        value = True if lowered in _TRUE else False if lowered in _FALSE else None
    elif spec.kind == "int":
        value = int(stripped) if _is_integer(stripped) else None
    else:
        value = _float(stripped)
    if value is None:
        raise SettingsError(f"{source}: expected {_kind_noun(spec)}, got {_shown(text)}")
    if not fits(spec, value):
        raise SettingsError(f"{source}: expected {expected(spec)}, got {_shown(text)}")
    return value


def _kind_noun(spec: FieldSpec) -> str:
    if spec.kind == "int":
        return "an integer"
    if spec.kind == "float":
        return "a number"
    return expected(spec)


def fits(spec: FieldSpec, value: Any) -> bool:
    """Whether `value` (already of Python type) is allowed for `spec`: type, bounds, choices."""
    if value is None:
        return spec.optional
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind in ("str", "choice"):
        return isinstance(value, str) and (spec.kind == "str" or value in spec.choices)
    if spec.kind == "list":
        return isinstance(value, tuple) and all(isinstance(item, str) for item in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if spec.kind == "int" and not isinstance(value, int):
        return False
    return (
        (isinstance(value, int) or math.isfinite(value))
        and (spec.gt is None or value > spec.gt)
        and (spec.ge is None or value >= spec.ge)
        and (spec.le is None or value <= spec.le)
    )


def check_fields(settings: msgspec.Struct) -> None:
    """Raise ValueError naming the first field whose value does not fit its setting (for a
    settings object built in Python, where msgspec checks no types or bounds)."""
    for spec in field_specs(type(settings)):
        value = getattr(settings, spec.name)
        if not fits(spec, value):
            raise ValueError(f"{spec.name}: expected {expected(spec)}, got {value!r}")


def shown_default(spec: FieldSpec) -> str | None:
    """The default as a user would write it; None when there is none to show."""
    value = spec.default
    if value is None or value == () or value is msgspec.NODEFAULT:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return _number(value)
    return str(value)


def from_sources(
    cls: type[msgspec.Struct],
    flags: Mapping[str, str | bool],
    environ: Mapping[str, str],
    names: Collection[str] | None = None,
) -> Any:
    """An instance of `cls`: each field from its flag (by field name: the text typed, or a
    switch's bool), else from its `FD2_*` variable, else its default. `names`: read only these
    fields from flags and variables."""
    values: dict[str, Any] = {}
    for spec in field_specs(cls):
        if names is not None and spec.name not in names:
            continue
        given = flags.get(spec.name)
        if isinstance(given, bool):
            values[spec.name] = given
        elif given is not None:
            values[spec.name] = parse_text(spec, given, spec.flag)
        elif spec.variable in environ:
            values[spec.name] = parse_text(spec, environ[spec.variable], spec.variable)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a rule across fields (__post_init__)
        raise SettingsError(str(exc)) from None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _is_integer(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isascii() and digits.isdigit()


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _shown(text: str) -> str:
    # Values may be long (URLs): the message names the source, a prefix of the value is enough.
    shown = text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "…"
    return repr(shown)
