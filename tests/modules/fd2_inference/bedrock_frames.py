"""AWS event stream frames for tests, written from the framing's specification (prelude, typed
headers, payload, CRC32s): what a Bedrock ConverseStream answer carries."""

from __future__ import annotations

import datetime
import struct
import uuid
import zlib
from typing import Any

import orjson

HeaderValue = bool | int | bytes | str | datetime.datetime | uuid.UUID | tuple[str, int]
"""A value; ("byte" | "short" | "long", n) picks an integer type other than int32."""

_INT_TYPES = {"byte": (2, ">b"), "short": (3, ">h"), "long": (5, ">q")}


def _header(name: str, value: HeaderValue) -> bytes:
    out = bytes([len(name.encode())]) + name.encode()
    if isinstance(value, bool):
        return out + (b"\x00" if value else b"\x01")
    if isinstance(value, tuple):
        kind, fmt = _INT_TYPES[value[0]]
        return out + bytes([kind]) + struct.pack(fmt, value[1])
    if isinstance(value, int):
        return out + b"\x04" + struct.pack(">i", value)
    if isinstance(value, bytes):
        return out + b"\x06" + struct.pack(">H", len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return out + b"\x07" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, datetime.datetime):
        millis = round(value.timestamp() * 1000)
        return out + b"\x08" + struct.pack(">q", millis)
    return out + b"\x09" + value.bytes


def message(headers: dict[str, HeaderValue], payload: bytes) -> bytes:
    block = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + block + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """One Bedrock event as ConverseStream sends it."""
    return message(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        orjson.dumps(payload),
    )


def exception(exception_type: str, text: str) -> bytes:
    """One Bedrock stream exception (`throttlingException`, ...)."""
    return message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        orjson.dumps({"message": text}),
    )
