"""What the steps inside the audit step learn about a request, for its record.

The audit step sets a fresh `Notes` for each request it records; the cache and redaction steps
write to it when one is set (a route without audit pays one context-variable read).
"""

from __future__ import annotations

from contextvars import ContextVar


class Notes:
    __slots__ = ("cache", "redactions")

    def __init__(self) -> None:
        self.cache: str | None = None
        """hit, miss or bypass; None: the route has no cache."""
        self.redactions: dict[str, int] | None = None
        """Matches by `<direction>.<kind>` (request.email, response.card, ...)."""

    def redacted(self, direction: str, counts: dict[str, int]) -> None:
        into = self.redactions
        if into is None:
            into = self.redactions = {}
        for kind, count in counts.items():
            name = f"{direction}.{kind}"
            into[name] = into.get(name, 0) + count


NOTES: ContextVar[Notes | None] = ContextVar("fd2_audit_notes", default=None)
