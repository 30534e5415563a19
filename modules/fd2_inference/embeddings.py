"""Embeddings as the client asked for them: a translated provider answers floats; a client that
asked for `encoding_format: base64` (the OpenAI SDKs do unless told otherwise) gets OpenAI's
base64 of little-endian float32 values."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Mapping
from typing import Any

Finish = Callable[[Mapping[str, Any]], Mapping[str, Any]]


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
