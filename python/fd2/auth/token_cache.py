"""Tokens already verified on a route, kept until they expire.

A client sends the same access token with every request until it expires; verifying its
signature and claims once per route instead of once per request takes the JWT cost off the hot
path. Entries are keyed by the exact token string, so only a byte-identical token hits, and one
is never served past its `exp`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from fd2.auth.identity import Identity

_MAX_ENTRIES: Final = 10_000


class VerifiedTokens:
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Identity, float]] = {}

    def get(self, token: str) -> Identity | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if time.time() >= entry[1]:
            del self._entries[token]
            return None
        return entry[0]

    def put(self, token: str, identity: Identity, claims: Mapping[str, Any]) -> None:
        expires, not_before = claims.get("exp"), claims.get("nbf")
        now = time.time()
        # Only tokens valid right now without any leeway: the rest are verified every time.
        if not isinstance(expires, int | float) or expires <= now:
            return
        if not_before is not None and not (
            isinstance(not_before, int | float) and not_before <= now
        ):
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries = {t: e for t, e in self._entries.items() if e[1] > now}
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
        self._entries[token] = (identity, float(expires))
