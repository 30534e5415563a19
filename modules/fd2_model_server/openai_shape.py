"""OpenAI's embeddings API over the model server's: request in, answer out.

`POST /v1/embeddings` takes `input` (a string or a list of strings), `model`, and
`encoding_format` (`float`, or `base64`: little-endian float32, which the `openai` SDK asks for
by default and decodes itself). The model server takes `texts` + `model_name` and answers
`{"embeddings": [[...]], "dimensions", "model"}`. Token ids cannot be embedded by a text model
server, and it cannot shorten vectors (`dimensions`): both are refused with a 400.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from fd2.serving.errors import BadRequest

_FORMATS = ("float", "base64")


def openai_texts(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    if isinstance(value, list) and value and all(isinstance(item, int | list) for item in value):
        raise BadRequest(
            "'input' as token ids is not supported by this model server: send text",
            param="input",
        )
    raise BadRequest("'input' is required: a string or a non-empty list of strings", param="input")


def encoding_format(body: dict[str, Any]) -> str:
    value = body.get("encoding_format")
    if value is None:
        return "float"
    if value not in _FORMATS:
        raise BadRequest("'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    return str(value)


def check_options(body: dict[str, Any]) -> None:
    if body.get("dimensions") is not None:
        raise BadRequest(
            "'dimensions' is not supported: the model server answers at the model's size",
            param="dimensions",
        )


def openai_answer(vectors: Sequence[Any], model: str, fmt: str, prompt_tokens: int) -> bytes:
    """OpenAI's embeddings list for the model server's vectors."""
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _base64(vector) if fmt == "base64" else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def _base64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
