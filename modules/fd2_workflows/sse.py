"""The SSE events of a streamed run: `node` per finished node, then `final` or `error`.

Each event is one `event:` line and one `data:` line of compact JSON (orjson writes no newline,
so a value's own line breaks stay escaped inside the string), then `data: [DONE]`.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from fd2.serving.errors import Fd2Error

SSE_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
DONE: Final = b"data: [DONE]\n\n"


def event(kind: str, payload: dict[str, Any]) -> bytes:
    data = orjson.dumps({"type": kind, **payload})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def error_event(exc: Fd2Error) -> bytes:
    """The error a run ended with, shaped as fd2's error bodies, with the status it would have."""
    error = {"message": exc.message, "type": exc.error_type, "code": exc.code, "param": exc.param}
    return event("error", {"status": exc.status, "error": error})
