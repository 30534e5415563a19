"""Credentials taken out of what an upstream answers, before fd2 relays it to a client.

An upstream that refuses a request sometimes quotes the credential it was sent (`"bad key:
Bearer sk-..."`). fd2 sent that credential on the operator's behalf, so the caller must never see
it. A `Scrubber` knows every secret value that went upstream with one request and replaces each
of them (in the forms an answer can quote them in) with `***`, keeping the answer's shape.

Only answers that fd2 relays as they are go through here (OpenAI-shaped error bodies, streamed
error events); it is not on the path of answers that succeed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

REDACTED: Final = "***"
CREDENTIAL_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key"}
)
"""Headers whose value is a credential whatever the route calls it."""
_SCHEMED: Final = frozenset({"authorization", "proxy-authorization"})
# As the log redactor: shorter values are no credential, and replacing them would blank parts of
# ordinary words all over an answer.
MIN_SECRET_LENGTH: Final = 4
_REDACTED_BYTES: Final = REDACTED.encode()


class Scrubber:
    """Replaces a fixed set of secret values; built when an answer needs it (error paths).

    A secret is found however an answer spells it: any of its characters may be percent-encoded
    (an upstream quoting the URL it was called with; encoders differ in what they encode) and, in
    bytes, JSON-escaped (`\\u0073`, `\\/`, as serialisers differ in what they escape).
    """

    __slots__ = ("_bytes", "_text")

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a value containing another is replaced whole.
        values = sorted(
            {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH},
            key=len,
            reverse=True,
        )
        self._text = (
            re.compile("|".join(_text_pattern(value) for value in values)) if values else None
        )
        self._bytes = (
            re.compile(b"|".join(_bytes_pattern(value) for value in values)) if values else None
        )

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, value: str) -> str:
        return value if self._text is None else self._text.sub(REDACTED, value)

    def raw(self, data: bytes) -> bytes:
        """`data` with every secret replaced as it appears in the bytes."""
        return data if self._bytes is None else self._bytes.sub(_REDACTED_BYTES, data)

    def json(self, body: bytes) -> bytes | None:
        """A JSON document with the secrets taken out of every string (names included), or None
        when that cannot be done with certainty (then the body must not be relayed)."""
        if self._bytes is None:
            return body
        cleaned = self.raw(body)
        if b"\\" not in cleaned:
            # With no escape sequence left, no secret can hide behind one: done.
            return cleaned
        try:
            value = orjson.loads(cleaned)
            walked, changed = self._walk(value)
            return orjson.dumps(walked) if changed else cleaned
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            return None

    def events(self, data: bytes) -> bytes:
        """Whole server-sent events with the secrets taken out of every line; a `data:` line
        holding JSON has its strings scrubbed after decoding, so escapes cannot hide a secret."""
        if self._bytes is None:
            return data
        lines = data.splitlines(keepends=True)
        out: list[bytes] = []
        for line in lines:
            content = line.rstrip(b"\r\n")
            end = line[len(content) :]
            if content.startswith(b"data:"):
                value = content[5:]
                space = b" " if value.startswith(b" ") else b""
                scrubbed = self.json(value[len(space) :])
                if scrubbed is not None:
                    out.append(b"data:" + space + scrubbed + end)
                    continue
            out.append(self.raw(content) + end)
        return b"".join(out)

    def _walk(self, value: Any) -> tuple[Any, bool]:
        """`value` with its strings scrubbed in place, and whether any changed."""
        # Iterative: an answer nested thousands deep must not exhaust the interpreter's stack.
        changed = False
        root: list[Any] = [value]
        stack: list[tuple[Any, Any]] = [(root, 0)]
        while stack:
            container, key = stack.pop()
            item = container[key]
            if isinstance(item, str):
                scrubbed = self.text(item)
                if scrubbed != item:
                    container[key] = scrubbed
                    changed = True
            elif isinstance(item, list):
                stack.extend((item, index) for index in range(len(item)))
            elif isinstance(item, dict):
                if any(self.text(name) != name for name in item):
                    item = {self.text(name): member for name, member in item.items()}
                    container[key] = item
                    changed = True
                stack.extend((item, name) for name in item)
        return root[0], changed


def credential_values(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
    """The credentials in a request's headers: the token of an `Authorization`-style value (and
    a Basic credential's password), the whole value of the others."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    values: list[str] = []
    for name, value in pairs:
        lower = name.lower()
        if lower not in CREDENTIAL_HEADERS or not value:
            continue
        if lower not in _SCHEMED:
            values.append(value)
            continue
        scheme, _, token = value.strip().partition(" ")
        if not token:
            values.append(value)
            continue
        values.append(token.strip())
        if scheme.lower() == "basic":
            values += _basic_parts(token.strip())
    return values


def _basic_parts(token: str) -> list[str]:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return []
    _, colon, password = decoded.partition(":")
    return [decoded, password] if colon else [decoded]


def _percent(byte: int) -> str:
    """`%XX` with either case of hex digit."""
    return "%" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")


def _text_pattern(secret: str) -> str:
    """Each character as itself or percent-encoded (its UTF-8 bytes; a space also as `+`)."""
    parts = []
    for char in secret:
        encoded = "".join(_percent(byte) for byte in char.encode("utf-8", "surrogatepass"))
        plus = "|\\+" if char == " " else ""
        parts.append(f"(?:{re.escape(char)}|{encoded}{plus})")
    return "".join(parts)


def _json_escape(code: int) -> str:
    return "\\\\u" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{code:04X}")


def _bytes_pattern(secret: str) -> bytes:
    """Each character as its UTF-8 bytes, percent-encoded, or as a JSON escape (`\\uXXXX`,
    a surrogate pair beyond the BMP, `\\/`, `\\"`, `\\\\`)."""
    parts = []
    for char in secret:
        code = ord(char)
        options = [
            re.escape(char),
            "".join(_percent(b) for b in char.encode("utf-8", "surrogatepass")),
        ]
        if code > 0xFFFF:
            high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
            options.append(_json_escape(high) + _json_escape(low))
        else:
            options.append(_json_escape(code))
        if char in '/"\\':
            options.append(re.escape("\\" + char))
        if char == " ":
            options.append("\\+")
        parts.append("(?:" + "|".join(options) + ")")
    return "".join(parts).encode("utf-8", "surrogatepass")
