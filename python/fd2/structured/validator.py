"""JSON Schema validation with `jsonschema_rs` (Rust; see pyproject.toml for why this one).

A schema is checked against its meta-schema once, when it is accepted (a prompt version, a
request's `schema`), and compiled once; validation then lists every error with its path, bounded
in number and length, so a re-ask can quote them and a 400 can name them without echoing a
caller's whole value.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

import jsonschema_rs
import orjson

MAX_ERRORS: Final = 8
_MESSAGE_MAX: Final = 200


_DRAFTS: Final = frozenset(
    {
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-06/schema#",
        "http://json-schema.org/draft-04/schema#",
    }
)


def _no_retrieval(uri: str) -> Any:
    raise ValueError(f"remote references are not fetched ({uri[:100]})")


class SchemaError(ValueError):
    """Not a valid JSON Schema (the message says where)."""


class Schema:
    """One compiled JSON Schema."""

    __slots__ = ("_validator", "source")

    def __init__(self, source: Mapping[str, Any]) -> None:
        if not isinstance(source, Mapping):
            raise SchemaError("a JSON Schema must be an object")
        self.source = dict(source)
        draft = self.source.get("$schema")
        if draft is not None and draft not in _DRAFTS:
            raise SchemaError("$.$schema: only the standard JSON Schema drafts are accepted")
        try:
            jsonschema_rs.meta.validate(self.source)
        except jsonschema_rs.ValidationError as exc:
            raise SchemaError(f"{_path(exc.instance_path)}: {_short(exc.message)}") from None
        except (jsonschema_rs.ReferencingError, ValueError) as exc:
            raise SchemaError(_short(str(exc).split("\n", 1)[0])) from None
        try:
            # The retriever refuses: a `$ref` to a URL is never fetched (no request leaves fd2
            # for a schema).
            self._validator = jsonschema_rs.validator_for(self.source, retriever=_no_retrieval)
        except (
            jsonschema_rs.ValidationError,
            jsonschema_rs.ReferencingError,
            ValueError,
        ) as exc:  # a bad regex pattern, ...
            raise SchemaError(_short(str(exc).split("\n", 1)[0])) from None

    def is_valid(self, value: Any) -> bool:
        return bool(self._validator.is_valid(value))

    def errors(self, value: Any) -> list[str]:
        """At most MAX_ERRORS messages, each naming where (`$.items[2].name: ...`)."""
        out = []
        for error in self._validator.iter_errors(value):
            out.append(f"{_path(error.instance_path)}: {_short(error.message)}")
            if len(out) >= MAX_ERRORS:
                break
        return out


def _path(parts: Any) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _short(message: str) -> str:
    return message if len(message) <= _MESSAGE_MAX else message[: _MESSAGE_MAX - 1] + "…"


@lru_cache(maxsize=512)
def _cached(text: bytes) -> Schema:
    return Schema(orjson.loads(text))


def compiled(source: Mapping[str, Any]) -> Schema:
    """`Schema(source)`, compiled once per distinct schema (requests repeat theirs)."""
    return _cached(orjson.dumps(source, option=orjson.OPT_SORT_KEYS))
