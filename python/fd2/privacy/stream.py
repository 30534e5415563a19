"""Redaction of an OpenAI-style event stream, matches that straddle events included.

The generated text of a choice (`delta.content`, `delta.refusal`, `text`) arrives in pieces, one
per event, and a card number may be split across several. Each such text field is scanned as one
running text: the last `PII_WINDOW` characters (the longest a match, or the unfinished start of
one, can span) are held back and sent with a later event, so a match is always seen whole before
any of it leaves. The held text goes out with the choice's finishing event (its `finish_reason`),
or in an event of its own before `[DONE]`. Every event keeps its place: an event whose text was
held carries less text, not fewer events. Tool calls' `function.arguments` are running texts
too (one per call index; held text is added to the finishing event's delta under the call's
index). Other strings of an event are redacted in place.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from fd2._native import PII_WINDOW, SseFramer
from fd2.privacy.redactor import Found, Redactor

_CONTEXT: Final = 64
"""Characters already sent that are kept as left context (a detector's look-behind)."""
_TEXT_FIELDS: Final = ("content", "refusal")
_DONE: Final = b"data: [DONE]"
_CHOICES: Final = frozenset({"choices"})
_NAMED: Final = "named:"
"""Running texts of named events (Anthropic, Responses) are keyed `named:...`."""
_TOOL: Final = "tool:"
"""Running texts of tool call arguments are keyed `tool:<call index>`."""


class TextStream:
    """One running text (a choice's content): `push` returns what may be sent now."""

    __slots__ = ("_context", "_pending", "_redactor", "window")

    def __init__(self, redactor: Redactor, window: int = PII_WINDOW) -> None:
        self._redactor = redactor
        self._pending = ""
        self._context = ""
        self.window = window

    def push(self, text: str, found: Found) -> str:
        self._pending += text
        return self._drain(found, final=False)

    def flush(self, found: Found) -> str:
        return self._drain(found, final=True)

    @property
    def held(self) -> bool:
        return bool(self._pending)

    def _drain(self, found: Found, *, final: bool) -> str:
        pending, context = self._pending, self._context
        limit = len(pending) if final else max(0, len(pending) - self.window)
        if limit == 0:
            return ""
        offset = len(context)
        matches = []
        for kind, start, end in self._redactor.scanner.scan(context + pending):
            start -= offset
            end -= offset
            if start < 0:
                continue  # began in text already sent (and then judged whole)
            if start >= limit:
                break
            if end > limit:  # straddles what may go now: keep all of it for later
                limit = start
                break
            matches.append((kind, start, end))
        out = pending[:limit]
        self._context = (context + out)[-_CONTEXT:]
        self._pending = pending[limit:]
        if matches:
            out = self._redactor.apply(out, matches, found, block=False)
        return out


class StreamRedactor:
    """Feeds the bytes of an event stream, returns the redacted bytes to send."""

    __slots__ = ("_framer", "_last", "_named", "_redactor", "_texts", "found")

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._framer = SseFramer()
        self._texts: dict[tuple[int, str], TextStream] = {}
        self._last: dict[str, Any] | None = None
        # Named-event streams: the event name, a template of the delta event, the text's path.
        self._named: dict[tuple[int, str], tuple[bytes, dict[str, Any], tuple[str, ...]]] = {}
        self.found = Found()

    def feed(self, chunk: bytes) -> bytes:
        events = self._framer.feed(chunk)
        if not events:
            return b""
        return b"".join(self._event(event) for event in _split(events))

    def finish(self) -> bytes:
        """What is still held, as one last event (when the stream ended without [DONE])."""
        self._framer.finish()
        return self._flush_all() + self._flush_named(lambda _: True)

    def _event(self, event: bytes) -> bytes:
        data = _data(event)
        if data == b"[DONE]":
            return self._flush_all() + event
        value: Any = None
        if data is not None:
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                value = None
        if not isinstance(value, dict):
            named = _named(event)
            if named is not None:
                return self._named_event(event, *named)
            return self._as_text(event)
        assert data is not None
        # One look at the whole event first. Without escapes, a string's characters stand in the
        # event as they are, between quotes that no detector reads as part of a value: no match
        # in the event means none in its strings, and only the held text needs work.
        quiet = b"\\" not in data and not self._redactor.scanner.scan(data.decode(errors="replace"))
        changed = False
        choices = value.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and self._choice(choice, quiet):
                    changed = True
        if not quiet:
            rest = self._redactor.json(value, self.found, block=False, skip=_CHOICES)
            if rest is not value:
                value, changed = rest, True
        self._last = value
        if not changed:
            return event
        return b"data: " + orjson.dumps(value) + b"\n\n"

    def _named_event(self, event: bytes, name: bytes, value: dict[str, Any]) -> bytes:
        """An `event: <name>` + one `data:` line event (Anthropic's messages stream, OpenAI's
        Responses stream): the generated text in their delta events is a running text per
        content block, held back like a chat choice's content; what is held goes out in an
        extra delta event of the same shape just before the block's closing event."""
        kind = value.get("type")
        delta = value.get("delta")
        if kind == "content_block_delta" and isinstance(delta, dict):  # Anthropic
            for field in ("text", "partial_json", "thinking"):
                piece = delta.get(field)
                if isinstance(piece, str):
                    index = value.get("index", 0)
                    template = {**value, "delta": {**delta, field: ""}}
                    key = (index if isinstance(index, int) else 0, f"{_NAMED}{field}")
                    out = self._push_named(key, name, template, ("delta", field), piece)
                    if out == piece:
                        return event
                    delta[field] = out
                    return _named_bytes(name, value)
        responses = isinstance(kind, str) and kind.startswith("response.")
        if responses and isinstance(delta, str) and str(kind).endswith(".delta"):  # Responses
            index = value.get("output_index", 0)
            ident = f"{_NAMED}{kind}:{value.get('item_id')}:{value.get('content_index')}"
            key = (index if isinstance(index, int) else 0, ident)
            template = {k: v for k, v in value.items() if k != "sequence_number"}
            out = self._push_named(key, name, {**template, "delta": ""}, ("delta",), delta)
            if out == delta:
                return event
            value["delta"] = out
            return _named_bytes(name, value)
        held = b""
        if kind == "content_block_stop":
            index = value.get("index", 0)
            held = self._flush_named(lambda key: key[0] == index)
        elif kind in ("message_stop", "response.completed", "response.incomplete"):
            held = self._flush_named(lambda _: True)
        elif responses and str(kind).endswith(".done"):
            index = value.get("output_index", 0)
            ident = f"{_NAMED}{str(kind).removesuffix('.done')}.delta:{value.get('item_id')}:"
            held = self._flush_named(lambda key: key[0] == index and key[1].startswith(ident))
        redacted = self._redactor.json(value, self.found, block=False)
        return held + (event if redacted is value else _named_bytes(name, redacted))

    def _push_named(
        self,
        key: tuple[int, str],
        name: bytes,
        template: dict[str, Any],
        path: tuple[str, ...],
        piece: str,
    ) -> str:
        stream = self._texts.get(key)
        if stream is None:
            stream = self._texts[key] = TextStream(self._redactor)
        self._named[key] = (name, template, path)
        return stream.push(piece, self.found)

    def _flush_named(self, which: Any) -> bytes:
        out = b""
        for key, (name, template, path) in self._named.items():
            stream = self._texts.get(key)
            if stream is None or not stream.held or not which(key):
                continue
            value = orjson.loads(orjson.dumps(template))
            holder = value
            for step in path[:-1]:
                holder = holder[step]
            holder[path[-1]] = stream.flush(self.found)
            out += _named_bytes(name, value)
        return out

    def _as_text(self, event: bytes) -> bytes:
        """An event that is not OpenAI's one-line JSON: redacted as text, on its own (a
        replacement holds no line break, so the event's framing is kept)."""
        text = event.decode(errors="replace")
        redacted = self._redactor.text(text, self.found, block=False)
        return event if redacted is text else redacted.encode()

    def _choice(self, choice: dict[str, Any], quiet: bool) -> bool:
        index = choice.get("index", 0)
        index = index if isinstance(index, int) else 0
        changed = False
        holder = choice.get("delta")
        fields: tuple[str, ...] = _TEXT_FIELDS
        if not isinstance(holder, dict):
            holder, fields = choice, ("text",)
        for field in fields:
            piece = holder.get(field)
            if isinstance(piece, str) and piece:
                stream = self._texts.get((index, field))
                if stream is None:
                    stream = self._texts[(index, field)] = TextStream(self._redactor)
                out = stream.push(piece, self.found)
                if out != piece:
                    holder[field] = out
                    changed = True
        if holder is not choice and self._tool_arguments(index, holder):
            changed = True
        if choice.get("finish_reason") is not None:
            for field in fields:
                stream = self._texts.get((index, field))
                if stream is not None and stream.held:
                    holder[field] = (holder.get(field) or "") + stream.flush(self.found)
                    changed = True
            for (at, field), stream in self._texts.items():
                if at == index and field.startswith(_TOOL) and stream.held:
                    _add_arguments(holder, int(field[len(_TOOL) :]), stream.flush(self.found))
                    changed = True
        if quiet:
            return changed
        # The choice's other strings (tool call arguments, logprobs' tokens) in place.
        for where in (holder, choice) if holder is not choice else (choice,):
            for key, item in list(where.items()):
                if key not in fields and item is not holder:
                    new = self._redactor.json(item, self.found, block=False)
                    if new is not item:
                        where[key] = new
                        changed = True
        return changed

    def _tool_arguments(self, index: int, delta: dict[str, Any]) -> bool:
        """A tool call's `function.arguments` arrive a few characters per event, like content:
        each call's arguments are one running text too (an address split across argument
        pieces is caught)."""
        calls = delta.get("tool_calls")
        if not isinstance(calls, list):
            return False
        changed = False
        for position, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            piece = function.get("arguments") if isinstance(function, dict) else None
            if not isinstance(piece, str) or not piece:
                continue
            assert isinstance(call, dict) and isinstance(function, dict)
            number = call.get("index", position)
            number = number if isinstance(number, int) else position
            key = (index, f"{_TOOL}{number}")
            stream = self._texts.get(key)
            if stream is None:
                stream = self._texts[key] = TextStream(self._redactor)
            out = stream.push(piece, self.found)
            if out != piece:
                function["arguments"] = out
                changed = True
        return changed

    def _flush_all(self) -> bytes:
        out = b""
        for (index, field), stream in self._texts.items():
            if not stream.held or field.startswith(_NAMED):
                continue
            text = stream.flush(self.found)
            base = {
                k: v
                for k, v in (self._last or {}).items()
                if k in ("id", "object", "created", "model")
            }
            choice: dict[str, Any] = {"index": index, "finish_reason": None}
            if field.startswith(_TOOL):
                choice["delta"] = {}
                _add_arguments(choice["delta"], int(field[len(_TOOL) :]), text)
            elif field != "text":
                choice["delta"] = {field: text}
            else:
                choice["text"] = text
            out += b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"
        return out


def _add_arguments(delta: dict[str, Any], number: int, text: str) -> None:
    """Held argument text of tool call `number` added to `delta` (clients join a call's
    argument pieces by its index)."""
    calls = delta.get("tool_calls")
    if not isinstance(calls, list):
        calls = delta["tool_calls"] = []
    for call in calls:
        if isinstance(call, dict) and call.get("index") == number:
            function = call.setdefault("function", {})
            function["arguments"] = (function.get("arguments") or "") + text
            return
    calls.append({"index": number, "function": {"arguments": text}})


def _named(event: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """`(name, value)` of an event made of one `event:` line and one JSON-object `data:` line."""
    lines = event.rstrip(b"\n").split(b"\n")
    if len(lines) != 2 or not lines[0].startswith(b"event:") or not lines[1].startswith(b"data:"):
        return None
    try:
        value = orjson.loads(lines[1][5:])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    return lines[0][6:].strip(), value


def _named_bytes(name: bytes, value: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(value) + b"\n\n"


def _split(events: bytes) -> list[bytes]:
    """The framer's output as single events, each with its blank line."""
    parts = events.replace(b"\r\n", b"\n").split(b"\n\n")
    return [part + b"\n\n" for part in parts if part]


def _data(event: bytes) -> bytes | None:
    """The data of a one-line `data:` event (OpenAI's shape); None for anything else."""
    body = event.rstrip(b"\n")
    if b"\n" in body or not body.startswith(b"data:"):
        return None
    return body[5:].lstrip(b" ")
