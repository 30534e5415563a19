"""Watches an answer on its way out: adds the rate-limit headers and finds the token usage.

Usage is read from the upstream's own report (`usage` in a JSON answer, or in a stream's last
event when the client asked for it); a stream without one is counted at one token per content
event, which is what OpenAI-compatible servers send.
"""

from __future__ import annotations

from typing import Any

import orjson

from fd2.types import Message, Send

_EVENT_STREAM = b"text/event-stream"


class UsageMeter:
    """Wraps `send`; after the answer, `tokens()` is the best known count of tokens used.

    With `measure=False` it only adds the headers (routes without token limits)."""

    __slots__ = (
        "_body",
        "_events",
        "_extra_headers",
        "_measure",
        "_send",
        "_status",
        "_stream",
        "_usage",
    )

    def __init__(
        self, send: Send, extra_headers: list[tuple[bytes, bytes]], *, measure: bool = True
    ) -> None:
        self._send = send
        self._extra_headers = extra_headers
        self._measure = measure
        self._status = 0
        self._stream = False
        self._usage: int | None = None
        self._events = 0
        self._body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = message["status"]
            headers = message.get("headers", ())
            for name, value in headers:
                if name == b"content-type":
                    self._stream = value.startswith(_EVENT_STREAM)
            message["headers"] = [*headers, *self._extra_headers]
        elif kind == "http.response.body" and self._measure:
            chunk: bytes = message.get("body", b"")
            if self._stream:
                self._scan_events(chunk)
            elif chunk and 200 <= self._status < 300:
                self._body.append(chunk)
        await self._send(message)

    def _scan_events(self, chunk: bytes) -> None:
        self._events += chunk.count(b"data: {")
        if not _reports_usage(chunk):
            return
        for line in chunk.split(b"\n"):
            if line.startswith(b"data: {") and _reports_usage(line):
                found = _usage_total(line[6:])
                if found is not None:
                    self._usage = found

    @property
    def started(self) -> bool:
        return self._status != 0

    def tokens(self, prompt_estimate: int) -> int:
        """Tokens the call used: reported usage, else an estimate; 0 for refused calls."""
        if self._usage is not None:
            return self._usage
        if not 200 <= self._status < 300:
            return 0
        if self._stream:
            return prompt_estimate + self._events
        found = _usage_total(b"".join(self._body)) if self._body else None
        return found if found is not None else prompt_estimate


def _reports_usage(data: bytes) -> bool:
    """Whether `"usage":` is followed by an object somewhere (streams often send `null`)."""
    start = data.find(b'"usage":')
    while start >= 0:
        rest = data[start + 8 : start + 16].lstrip()
        if rest.startswith(b"{"):
            return True
        start = data.find(b'"usage":', start + 8)
    return False


def _usage_total(raw: bytes) -> int | None:
    if b'"usage"' not in raw:
        return None
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    usage = value.get("usage") if isinstance(value, dict) else None
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    return sum(part for part in parts if isinstance(part, int))
