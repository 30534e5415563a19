"""The PII redaction step (docs/privacy.md): the request's JSON before it leaves, the answer on
its way back, streams included.

Request: every string of the JSON body is scanned (messages, prompts, inputs, tool arguments);
a kind whose action is `block` refuses the request with 400 naming the kind, never the value.
Answer: a JSON answer is redacted whole (its content-length recomputed); an event stream event by
event (`fd2.privacy.stream`); other text (`text/*`, `+json`, NDJSON) whole, as text; binary
content types pass as they are. Counts by kind go to the
audit record and to `fd2_pii_matches`.
"""

from __future__ import annotations

from typing import Final

import orjson

from fd2.audit.notes import NOTES
from fd2.module import Handler
from fd2.privacy.policy import LABELS
from fd2.privacy.redactor import Found, Redactor
from fd2.privacy.stream import StreamRedactor
from fd2.serving import request_metrics
from fd2.serving.errors import BadRequest
from fd2.serving.request import Request
from fd2.types import Message, Send

_JSON: Final = b"application/json"
_SSE: Final = b"text/event-stream"


class PiiBlocked(BadRequest):
    code = "pii_blocked"


class Redaction:
    __slots__ = ("_redactor", "_request", "_response")

    def __init__(self, redactor: Redactor, *, request: bool, response: bool) -> None:
        self._redactor = redactor
        self._request = request
        self._response = response

    async def __call__(self, request: Request, send: Send, call_next: Handler) -> None:
        if self._request and request.method in ("POST", "PUT", "PATCH"):
            await self._redact_request(request)
        if self._response:
            answer = _Answer(send, self._redactor, request)
            try:
                await call_next(request, answer)
            finally:
                answer.close()
        else:
            await call_next(request, send)

    async def _redact_request(self, request: Request) -> None:
        body = await request.body()
        if not body:
            return
        value = await request.json_object()
        found = Found()
        redacted = self._redactor.json(value, found)
        _record(request, "request", found)
        if found.blocked is not None:
            raise PiiBlocked(
                f"The request contains {LABELS[found.blocked]} ({found.blocked}), which this "
                "module does not accept.",
                param=found.blocked,
            )
        if redacted is not value:
            request.replace_json(redacted, orjson.dumps(redacted))


class _Answer:
    """The `send` the handler writes to: redacts the answer on its way to the client."""

    __slots__ = ("_body", "_redactor", "_request", "_send", "_start", "_stream")

    def __init__(self, send: Send, redactor: Redactor, request: Request) -> None:
        self._send = send
        self._redactor = redactor
        self._request = request
        self._start: Message | None = None
        self._body: list[bytes] | None = None
        self._stream: StreamRedactor | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            kind = b""
            for name, value in message.get("headers", ()):
                if name == b"content-type":
                    kind = value.split(b";", 1)[0].strip().lower()
            if kind == _SSE:
                self._stream = StreamRedactor(self._redactor)
            elif _whole_text(kind):
                self._start, self._body = message, []  # sent once the whole body is redacted
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if self._body is not None:
            self._body.append(chunk)
            if not more:
                await self._whole(b"".join(self._body))
            return
        stream = self._stream
        if stream is not None:
            out = stream.feed(chunk)
            if not more:
                out += stream.finish()
                _record(self._request, "response", stream.found)
                self._stream = None
            await self._send({"type": "http.response.body", "body": out, "more_body": more})
            return
        await self._send(message)

    async def _whole(self, body: bytes) -> None:
        start = self._start
        assert start is not None
        self._body = None
        found = Found()
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            value = None
        if value is not None:
            redacted = self._redactor.json(value, found, block=False)
            if redacted is not value:
                body = orjson.dumps(redacted)
        else:  # labelled JSON but not JSON: still never unscanned
            text = body.decode(errors="replace")
            redacted_text = self._redactor.text(text, found, block=False)
            if redacted_text is not text:
                body = redacted_text.encode()
        _record(self._request, "response", found)
        start["headers"] = [
            (name, b"%d" % len(body) if name == b"content-length" else value)
            for name, value in start.get("headers", ())
        ]
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    def close(self) -> None:
        """A stream the handler ended without a last message (it failed, or the client left):
        its held text is dropped with it, and its counts are recorded."""
        if self._stream is not None:
            _record(self._request, "response", self._stream.found)
            self._stream = None


def _whole_text(kind: bytes) -> bool:
    """Answers read whole and redacted: JSON (also `+json` types such as problem details, and
    NDJSON: not JSON as a whole, so scanned as text) and any other text. An upstream error in
    `text/plain` that quotes a prompt is text a client reads too."""
    return (
        kind == _JSON
        or kind.endswith(b"+json")
        or kind.startswith(b"text/")
        or (kind == b"application/x-ndjson")
    )


def _record(request: Request, direction: str, found: Found) -> None:
    if not found.counts:
        return
    notes = NOTES.get()
    if notes is not None:
        notes.redacted(direction, found.counts)
    metrics = request_metrics.current()
    if metrics is not None:
        route = (request.project, request.module, request.environment)
        for kind, count in found.counts.items():  # bounded: the eight kinds
            metrics.pii_matches.labels(*route, kind).inc(count)
