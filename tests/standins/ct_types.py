"""The kinds of value the Control Tower's models are made of, checked as pydantic 2 checks them.

Python-side (lax) validation of what `json.loads` gives: the conversions it allows (a string read
as a number, 1 read as true, a unix time read as a date), the error records it reports (`type`,
`loc`, `msg`, `input`, `ctx`), and how its "smart" unions choose a member. Observed on the real
service (pydantic 2.14), see tests/standins/ct_recorded/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from ct_moments import NUMBER, BadMoment, from_text, from_unix, iso

Error = dict[str, Any]


class Exactness(IntEnum):
    """How closely a value fitted: a smart union prefers the closer fit among equals."""

    LAX = 0  # something was converted: "512" read as 512, 1 as true
    STRICT = 1  # valid as given, but rebuilt: a model from a mapping, a non-empty mapping
    EXACT = 2  # the value itself


@dataclass(frozen=True)
class Checked:
    value: Any
    exactness: Exactness
    # Models only: how many fields the input named, counting those of the models nested inside
    # (pydantic adds them up, so a model with a filled-in nested list outweighs a flat one).
    fields_set: int | None = None


def _add(total: int | None, more: int | None) -> int | None:
    return total if more is None else (total or 0) + more


class Invalid(Exception):
    def __init__(self, errors: list[Error]) -> None:
        super().__init__(errors)
        self.errors = errors

    def under(self, *loc: str | int) -> Invalid:
        return Invalid([{**e, "loc": [*loc, *e["loc"]]} for e in self.errors])


def error(kind: str, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> Error:
    record: Error = {"type": kind, "loc": [], "msg": msg, "input": value}
    if ctx is not None:
        record["ctx"] = ctx
    return record


@dataclass(frozen=True)
class Settled:
    """A value a before-validator already checked, put back into the input in its place."""

    checked: Checked


def plain(value: Any) -> Any:
    """A checked value (or an input a validator wrote into) as JSON-ready data."""
    if isinstance(value, Settled):
        return plain(value.checked.value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return iso(value)
    return value


class Kind(Protocol):
    @property
    def label(self) -> str:
        """What a union calls it in an error's `loc`."""
        ...

    def check(self, value: Any) -> Checked: ...


def _fail(kind: str, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> Invalid:
    return Invalid([error(kind, msg, value, ctx)])


_INT_TEXT = re.compile(r"^\s*[+-]?\d(?:_?\d)*(?:\.0*)?\s*$")
_FLOAT_TEXT = re.compile(r"^\s*[+-]?(?:\d(?:_?\d)*)?(?:\.\d*)?(?:[eE][+-]?\d+)?\s*$")
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


class Text:
    label = "str"

    def check(self, value: Any) -> Checked:
        if isinstance(value, str):
            return Checked(value, Exactness.EXACT)
        raise _fail("string_type", "Input should be a valid string", value)


class Integer:
    label = "int"

    def check(self, value: Any) -> Checked:
        if isinstance(value, bool):
            return Checked(int(value), Exactness.LAX)
        if isinstance(value, int):
            return Checked(value, Exactness.EXACT)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise _fail("finite_number", "Input should be a finite number", value)
            if value.is_integer():
                return Checked(int(value), Exactness.LAX)
            raise _fail(
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
                value,
            )
        if isinstance(value, str):
            if _INT_TEXT.match(value):
                return Checked(int(value.strip().split(".")[0].replace("_", "")), Exactness.LAX)
            raise _fail(
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                value,
            )
        raise _fail("int_type", "Input should be a valid integer", value)


class Number:
    label = "float"

    def check(self, value: Any) -> Checked:
        if isinstance(value, bool):
            return Checked(float(value), Exactness.LAX)
        if isinstance(value, float):
            return Checked(value, Exactness.EXACT)
        if isinstance(value, int):
            return Checked(float(value), Exactness.STRICT)
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            if text.lower() in ("inf", "+inf", "-inf", "nan", "infinity", "-infinity"):
                return Checked(float(text), Exactness.LAX)
            if _FLOAT_TEXT.match(value) and any(c.isdigit() for c in text):
                return Checked(float(text), Exactness.LAX)
            raise _fail(
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
                value,
            )
        raise _fail("float_type", "Input should be a valid number", value)


class Flag:
    label = "bool"

    def check(self, value: Any) -> Checked:
        if isinstance(value, bool):
            return Checked(value, Exactness.EXACT)
        if isinstance(value, int | float) and value in (0, 1):
            return Checked(bool(value), Exactness.LAX)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return Checked(value.lower() in _TRUE, Exactness.LAX)
        if isinstance(value, int | str):
            raise _fail(
                "bool_parsing", "Input should be a valid boolean, unable to interpret input", value
            )
        raise _fail("bool_type", "Input should be a valid boolean", value)


class AnyValue:
    label = "any"

    def check(self, value: Any) -> Checked:
        return Checked(value, Exactness.EXACT)


@dataclass(frozen=True)
class Nullable:
    inner: Kind

    @property
    def label(self) -> str:
        return f"nullable[{self.inner.label}]"

    def check(self, value: Any) -> Checked:
        return Checked(None, Exactness.EXACT) if value is None else self.inner.check(value)


@dataclass(frozen=True)
class ListOf:
    item: Kind

    @property
    def label(self) -> str:
        return f"list[{self.item.label}]"

    def check(self, value: Any) -> Checked:
        if not isinstance(value, list):
            raise _fail("list_type", "Input should be a valid list", value)
        items, errors, exactness, named = [], [], Exactness.EXACT, None
        for index, element in enumerate(value):
            try:
                checked = self.item.check(element)
            except Invalid as exc:
                errors += exc.under(index).errors
                continue
            items.append(checked.value)
            exactness = min(exactness, checked.exactness)
            named = _add(named, checked.fields_set)
        if errors:
            raise Invalid(errors)
        return Checked(items, exactness, named)


@dataclass(frozen=True)
class MapOf:
    """`Dict[str, X]`; JSON keys are always strings, so only the values are checked."""

    item: Kind

    @property
    def label(self) -> str:
        return f"dict[str,{self.item.label}]"

    def check(self, value: Any) -> Checked:
        if not isinstance(value, dict):
            raise _fail("dict_type", "Input should be a valid dictionary", value)
        # Observed: an empty mapping wins a union outright, a non-empty one only ties with a model.
        exactness = Exactness.STRICT if value else Exactness.EXACT
        result, errors, named = {}, [], None
        for key, element in value.items():
            try:
                checked = self.item.check(element)
            except Invalid as exc:
                errors += exc.under(key).errors
                continue
            result[key] = checked.value
            exactness = min(exactness, checked.exactness)
            named = _add(named, checked.fields_set)
        if errors:
            raise Invalid(errors)
        return Checked(result, exactness, named)


@dataclass(frozen=True)
class Choice:
    """A `str` Enum: the value must be one of `values` (kept as the plain string)."""

    values: tuple[str, ...]
    label: str = "enum"

    def check(self, value: Any) -> Checked:
        if isinstance(value, str) and value in self.values:
            return Checked(value, Exactness.EXACT)
        quoted = [f"'{v}'" for v in self.values]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise _fail("enum", f"Input should be {expected}", value, {"expected": expected})


@dataclass(frozen=True)
class Either:
    """pydantic's smart union: the member naming the most fields wins, then the closest fit,
    then the first; an exact fit that is not a model ends the search at once."""

    members: tuple[Kind, ...]
    label: str = "union"

    def check(self, value: Any) -> Checked:
        best: Checked | None = None
        errors: list[Error] = []
        for member in self.members:
            try:
                checked = member.check(value)
            except Invalid as exc:
                if best is None:
                    errors += exc.under(member.label).errors
                continue
            if checked.exactness == Exactness.EXACT and checked.fields_set is None:
                return checked
            if best is None or _better(checked, best):
                best = checked
        if best is None:
            raise Invalid(errors)
        return best


def _better(new: Checked, current: Checked) -> bool:
    named, best = new.fields_set, current.fields_set
    if named is not None and best is not None and named != best:
        return named > best
    return new.exactness > current.exactness


_MISSING = object()


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    default: Any = _MISSING  # a value (copied), or a callable when `factory`
    factory: bool = False

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def default_value(self) -> Any:
        return self.default() if self.factory else _copy(self.default)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass(frozen=True)
class Model:
    """A pydantic BaseModel: declared fields in order; anything else in the input is dropped."""

    label: str
    fields: tuple[Field, ...]
    before: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # a mode="before" validator

    def check(self, value: Any) -> Checked:
        if not isinstance(value, dict):
            raise _fail(
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                value,
            )
        if self.before is not None:
            value = self.before(value)
        result: dict[str, Any] = {}
        errors: list[Error] = []
        exactness, named = Exactness.STRICT, 0
        for spec in self.fields:
            if spec.name not in value:
                if spec.required:
                    errors.append({**error("missing", "Field required", value), "loc": [spec.name]})
                else:
                    result[spec.name] = spec.default_value()
                continue
            try:
                checked = spec.kind.check(value[spec.name])
            except Invalid as exc:
                errors += exc.under(spec.name).errors
                continue
            result[spec.name] = checked.value
            exactness = min(exactness, checked.exactness)
            named += 1 + (checked.fields_set or 0)
        if errors:
            raise Invalid(errors)
        return Checked(result, exactness, named)


class Moment:
    """`datetime`: ISO 8601 text (a date alone is midnight), or a unix time (seconds, or
    milliseconds past 2e10) which gives UTC. Naive stays naive."""

    label = "datetime"

    def check(self, value: Any) -> Checked:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _moment(from_unix, value)
        if not isinstance(value, str):
            raise _fail("datetime_type", "Input should be a valid datetime", value)
        if NUMBER.match(value):
            return _moment(from_unix, float(value))
        return _moment(from_text, value)


def _moment(read: Callable[[Any], datetime], value: Any) -> Checked:
    try:
        return Checked(read(value), Exactness.LAX)
    except BadMoment as bad:
        date = "datetime or date" if bad.kind == "datetime_from_date_parsing" else "datetime"
        message = f"Input should be a valid {date}, {bad.reason}"
        raise _fail(bad.kind, message, value, {"error": bad.reason}) from None
