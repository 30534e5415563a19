"""Embeddings as the client asked for them: a translated provider answers floats; a client that
asked for `encoding_format: base64` (the OpenAI SDKs do unless told otherwise) gets OpenAI's
base64 of little-endian float32 values."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

Finish = Callable[[Mapping[str, Any]], Mapping[str, Any]]
_FLOAT32_MAX: Final = 3.4028234663852886e38


def input_count(payload: Mapping[str, Any]) -> int | None:
    """How many embeddings a request asks for (one per text or token list), or None when its
    `input` is not a shape a count can be read from (the provider refuses those)."""
    value = payload.get("input")
    if isinstance(value, str):
        return 1
    if isinstance(value, list) and value:
        return 1 if all(isinstance(item, int) for item in value) else len(value)
    return None


def _float32s(text: str) -> bool:
    """Whether `text` is base64 of a non-empty run of float32 values."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return bool(raw) and len(raw) % 4 == 0


def checked(answer: Mapping[str, Any], expected: int | None) -> Mapping[str, Any]:
    """`answer` (a translated OpenAI embeddings list) when it holds one vector of numbers per
    input, in order; raises ValueError otherwise (the relay answers 502 untranslatable), so a
    provider answer of another shape never reaches a client as fewer or broken vectors."""
    data = answer.get("data")
    if not isinstance(data, list) or (expected is not None and len(data) != expected):
        raise ValueError("embeddings: not one vector per input")
    for position, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, str) and item.get("index") == position and _float32s(vector):
            continue  # already base64, as an OpenAI-compatible provider (Azure) answers it
        if not isinstance(vector, list) or not vector or item.get("index") != position:
            raise ValueError("embeddings: an item without its vector")
        for number in vector:
            if isinstance(number, bool) or not isinstance(number, float | int):
                raise ValueError("embeddings: a vector member that is not a number")
            # Also what base64 (float32) can carry: no NaN, nothing past float32's range.
            try:
                if not abs(float(number)) <= _FLOAT32_MAX:
                    raise ValueError("embeddings: a vector member out of float32 range")
            except OverflowError:
                raise ValueError("embeddings: a vector member out of float32 range") from None
    return answer


def as_requested(payload: Mapping[str, Any]) -> Finish | None:
    if payload.get("encoding_format") != "base64":
        return None
    return _to_base64


def _to_base64(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    data = answer.get("data")
    if not isinstance(data, list):
        return answer
    encoded = []
    for item in data:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            raw = struct.pack(f"<{len(vector)}f", *vector)
            item = {**item, "embedding": base64.b64encode(raw).decode("ascii")}
        encoded.append(item)
    return {**answer, "data": encoded}
