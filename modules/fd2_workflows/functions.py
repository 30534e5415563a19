"""The allow-listed functions a `function` node may name. Nothing else is ever run.

A manifest names a function (`"function": "split_into_chunks"`) and gives it options in the node's
`config`; it can never name an import path. Each function is pure: it reads the state and
returns the fields it writes (plus `metadata` facts), and never mutates what it was given.
`split_into_chunks` and `combine_results` are the two the Control Tower's documents name, with
their option names and defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec

from fd2_workflows.errors import NodeFailed
from fd2_workflows.state import MAX_DEPTH, within_depth
from fd2_workflows.templates import LIST_SEPARATOR, as_text

Updates = dict[str, Any]


class _Options(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class SplitOptions(_Options, frozen=True, kw_only=True, forbid_unknown_fields=True):
    chunk_size: Annotated[int, msgspec.Meta(ge=1)] = 2000
    chunk_overlap: Annotated[int, msgspec.Meta(ge=0)] = 200
    input: str = "document"
    output: str = "chunks"

    def __post_init__(self) -> None:
        if self.chunk_overlap >= self.chunk_size:
            # Each chunk must move forward, or the split never ends.
            raise ValueError("chunk_overlap must be smaller than chunk_size")


class JoinOptions(_Options, frozen=True, kw_only=True, forbid_unknown_fields=True):
    input: str = "summaries"
    output: str = "final_summary"
    separator: str = LIST_SEPARATOR


class ExtractJsonOptions(_Options, frozen=True, kw_only=True, forbid_unknown_fields=True):
    input: str = "final_summary"
    output: str | None = None
    """Where the parsed value goes; when absent the value must be an object and its keys that
    the state declares are written as fields (how an `llm` node's verdict steers a condition)."""


class CopyOptions(_Options, frozen=True, kw_only=True, forbid_unknown_fields=True):
    input: str
    output: str


class IncrementOptions(_Options, frozen=True, kw_only=True, forbid_unknown_fields=True):
    field: str
    by: int = 1


def split_into_chunks(state: Mapping[str, Any], o: SplitOptions, node: str) -> Updates:
    text = state.get(o.input)
    if not isinstance(text, str):
        raise NodeFailed(node, f"{o.input!r} is not a string")
    chunks: list[str] = []
    step = o.chunk_size - o.chunk_overlap
    start = 0
    while start < len(text):
        chunks.append(text[start : start + o.chunk_size])
        if start + o.chunk_size >= len(text):
            break  # the last chunk reached the end: another would only repeat its overlap
        start += step
    return {o.output: chunks, "metadata": {"num_chunks": len(chunks)}}


def combine_results(state: Mapping[str, Any], o: JoinOptions, node: str) -> Updates:
    value = state.get(o.input)
    if isinstance(value, list):
        return {o.output: o.separator.join(as_text(item) for item in value)}
    return {o.output: as_text(value)}


def extract_json(state: Mapping[str, Any], o: ExtractJsonOptions, node: str) -> Updates:
    text = state.get(o.input)
    if not isinstance(text, str):
        raise NodeFailed(node, f"{o.input!r} is not a string")
    value = _first_json(text)
    if value is _NOTHING:
        raise NodeFailed(node, f"{o.input!r} holds no JSON value")
    if not within_depth(value):
        raise NodeFailed(node, f"the JSON in {o.input!r} is nested more than {MAX_DEPTH} deep")
    if o.output is not None:
        return {o.output: value}
    if not isinstance(value, dict):
        raise NodeFailed(node, f"the JSON in {o.input!r} is not an object")
    return dict(value)


def copy_field(state: Mapping[str, Any], o: CopyOptions, node: str) -> Updates:
    return {o.output: state.get(o.input)}


def increment(state: Mapping[str, Any], o: IncrementOptions, node: str) -> Updates:
    value = state.get(o.field) or 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise NodeFailed(node, f"{o.field!r} is not an integer")
    return {o.field: value + o.by}


_NOTHING: Final = object()
_DECODER: Final = json.JSONDecoder()
_OPENING: Final = re.compile(r"[{\[]")
MAX_ATTEMPTS: Final = 16
"""Openings tried before giving up. Each attempt may read to the end of the text, so trying
every `[` of `[[[[...` would cost the square of its length (seconds of a blocked worker for
100 KB); a model's verdict is found at one of its first few openings."""


def _first_json(text: str) -> Any:
    """The first JSON object or array in `text` (models wrap JSON in prose or ``` fences)."""
    position = 0
    for _ in range(MAX_ATTEMPTS):
        opening = _OPENING.search(text, position)
        if opening is None:
            break
        start = opening.start()
        try:
            value, _ = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):  # not JSON here, or nested past the stack
            position = start + 1
            continue
        return value
    return _NOTHING


@dataclass(frozen=True, slots=True)
class Function:
    run: Callable[[Mapping[str, Any], Any, str], Updates]
    options: type[_Options]
    writes: Callable[[Any], tuple[str, ...] | None]
    """The fields it writes for these options; None: whichever declared fields its input has."""


FUNCTIONS: Final[Mapping[str, Function]] = {
    "split_into_chunks": Function(split_into_chunks, SplitOptions, lambda o: (o.output,)),
    "combine_results": Function(combine_results, JoinOptions, lambda o: (o.output,)),
    "join": Function(combine_results, JoinOptions, lambda o: (o.output,)),
    "extract_json": Function(
        extract_json, ExtractJsonOptions, lambda o: None if o.output is None else (o.output,)
    ),
    "copy": Function(copy_field, CopyOptions, lambda o: (o.output,)),
    "increment": Function(increment, IncrementOptions, lambda o: (o.field,)),
}
