"""A deliberately simple, one-shot reading of a whole event stream by the WHATWG rules.

Used as the oracle for the native decoder's property tests and fuzzing: clarity over speed.
"""

from __future__ import annotations

import re

BOM = b"\xef\xbb\xbf"
LINE_END = re.compile(rb"\r\n|\r|\n")


def reference_events(original: bytes) -> tuple[list[tuple[bytes, bytes, bytes]], int]:
    """Every dispatched event as (type, data, last event id), and how many bytes of `original`
    come before the unterminated tail (which the rules discard): the bytes a relay passes on."""
    stream = original.removeprefix(BOM)
    events: list[tuple[bytes, bytes, bytes]] = []
    data: list[bytes] | None = None
    event_type, last_id = b"", b""
    consumed = 0
    position = 0
    for match in LINE_END.finditer(stream):
        line = stream[position : match.start()]
        position = match.end()
        if not line:
            consumed = position
            if data is not None:
                events.append((event_type or b"message", b"\n".join(data), last_id))
            data, event_type = None, b""
            continue
        if line.startswith(b":"):
            continue
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data = [*(data or []), value]
        elif name == b"event":
            event_type = value
        elif name == b"id" and b"\0" not in value:
            last_id = value
    bom = len(original) - len(stream)
    return events, bom + consumed if consumed else 0
