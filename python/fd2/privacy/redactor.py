"""Applies a module's actions to the matches the native scanner finds, in text and in JSON."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from fd2._native import PiiScanner
from fd2.privacy.policy import Action


class Found:
    """What one redaction pass saw: counts by kind, and the first kind to block (if any)."""

    __slots__ = ("blocked", "counts")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.blocked: str | None = None


class Redactor:
    __slots__ = ("_actions", "_key", "scanner")

    def __init__(self, actions: Mapping[str, Action], hash_key: bytes | None) -> None:
        self._actions = dict(actions)
        self._key = hash_key
        self.scanner = PiiScanner(list(actions))

    def text(self, text: str, found: Found, *, block: bool = True) -> str:
        """`text` with its matches replaced as their kinds' actions say (counted in `found`)."""
        matches = self.scanner.scan(text)
        if not matches:
            return text
        return self.apply(text, matches, found, block=block)

    def apply(
        self, text: str, matches: list[tuple[str, int, int]], found: Found, *, block: bool
    ) -> str:
        parts: list[str] = []
        last = 0
        counts = found.counts
        for kind, start, end in matches:
            counts[kind] = counts.get(kind, 0) + 1
            action = self._actions[kind]
            if action == "detect":
                continue
            if action == "block" and block:
                if found.blocked is None:
                    found.blocked = kind
                continue
            parts += (text[last:start], self._replacement(kind, action, text[start:end]))
            last = end
        if not parts:
            return text
        parts.append(text[last:])
        return "".join(parts)

    def _replacement(self, kind: str, action: Action, value: str) -> str:
        if action == "hash" and self._key is not None:
            digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:12]
            return f"[{kind.upper()}:{digest}]"
        return f"[{kind.upper()}]"

    def json(
        self, value: Any, found: Found, *, block: bool = True, skip: frozenset[str] = frozenset()
    ) -> Any:
        """`value` with every string in it redacted (object keys are left as they are; members
        named in `skip` at any level are not scanned)."""
        if isinstance(value, str):
            return self.text(value, found, block=block)
        if isinstance(value, dict):
            changed = False
            out: dict[str, Any] = {}
            for key, item in value.items():
                new = item if key in skip else self.json(item, found, block=block, skip=skip)
                changed = changed or new is not item
                out[key] = new
            return out if changed else value
        if isinstance(value, list):
            items = [self.json(item, found, block=block, skip=skip) for item in value]
            if any(new is not old for new, old in zip(items, value, strict=True)):
                return items
        return value
