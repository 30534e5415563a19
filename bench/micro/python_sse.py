"""The best pure-Python way we know to do what the native SSE relay does, for benchmarks.

Frames an OpenAI event stream by the WHATWG line rules (LF, CR, CRLF; CR and LF may arrive in
different chunks), passes whole events on as the original bytes, spots `[DONE]`, and reads
usage, finish reason, model and errors with byte searches first and `orjson.loads` only for the
events that can carry them. Fast path: chunks that are whole LF-terminated events.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_LINE_END = re.compile(rb"\r\n|\r|\n")
_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"')


class PythonSseRelay:
    __slots__ = (
        "_buffer",
        "_cr_pending",
        "done",
        "error",
        "events",
        "finish_reason",
        "model",
        "usage",
    )

    def __init__(self) -> None:
        self._buffer = b""
        self._cr_pending = False
        self.events = 0
        self.done = False
        self.model: str | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.error: Any = None

    def feed(self, chunk: bytes) -> bytes:
        data = self._buffer + chunk if self._buffer else chunk
        if self._cr_pending and data[:1] == b"\n":
            # The LF of a CRLF split across chunks: part of the previous line end.
            skip, data = data[:1], data[1:]
        else:
            skip = b""
        self._cr_pending = False
        if b"\r" not in data:
            end = data.rfind(b"\n\n")
            if end < 0:
                self._buffer = data
                return skip
            end += 2
            for block in data[:end].split(b"\n\n"):
                if block:
                    self._event(block.split(b"\n"))
        else:
            end = self._scan(data)
        self._buffer = data[end:]
        return skip + data[:end]

    def _scan(self, data: bytes) -> int:
        """General case: every line end kind; returns the offset past the last blank line."""
        lines: list[bytes] = []
        start = boundary = 0
        for match in _LINE_END.finditer(data):
            line = data[start : match.start()]
            start = match.end()
            if match.group() == b"\r" and start == len(data):
                self._cr_pending = True
            if line:
                lines.append(line)
            else:
                boundary = start
                if lines:
                    self._event(lines)
                lines = []
        return boundary

    def _event(self, lines: list[bytes]) -> None:
        self.events += 1
        values = []
        for line in lines:
            if line.startswith(b"data:"):
                value = line[5:]
                values.append(value[1:] if value[:1] == b" " else value)
            elif line == b"data":
                values.append(b"")
        if not values:
            return
        data = values[0] if len(values) == 1 else b"\n".join(values)
        if data == b"[DONE]":
            self.done = True
            return
        wanted = (
            (self.model is None and b'"model"' in data)
            or (b'"usage"' in data and _USAGE.search(data) is not None)
            or (b'"finish_reason"' in data and _FINISH.search(data) is not None)
            or (self.error is None and b'"error"' in data)
        )
        if not wanted:
            return
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(value, dict):
            return
        if self.model is None:
            self.model = value.get("model")
        if isinstance(value.get("usage"), dict):
            self.usage = value["usage"]
        if self.error is None and value.get("error") is not None:
            self.error = value["error"]
        for choice in value.get("choices") or ():
            reason = choice.get("finish_reason")
            if reason is not None:
                self.finish_reason = reason
