"""A module's `redaction` block: what to do with each kind of PII, in which direction.

    "redaction": {"default": "mask", "kinds": {"card": "block", "ipv4": "off"},
                  "on": ["request", "response"], "hash_key": "${...secret...}"}

Actions: `detect` (count only), `mask` (`[EMAIL]`), `hash` (`[EMAIL:<12 hex>]`, HMAC-SHA256 with
the module's `hash_key`, stable for the same value and key), `block` (the request is refused with
400 naming the kind; on an answer, which cannot be refused once the upstream has sent it, block
masks), `off`. A block that names no kinds applies `default` (mask) to all of them.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from fd2._native import PII_KINDS
from fd2.serving.errors import ConfigError

Action = Literal["off", "detect", "mask", "hash", "block"]
Direction = Literal["request", "response"]
KINDS: Final[tuple[str, ...]] = tuple(PII_KINDS)
LABELS: Final = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "card": "a payment card number",
    "iban": "an IBAN",
    "ssn": "a US social security number",
    "ipv4": "an IP address",
    "ipv6": "an IP address",
    "credential": "a credential",
}


class RedactionSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default: Action = "mask"
    kinds: dict[str, Action] = msgspec.field(default_factory=dict)
    on: list[Direction] = msgspec.field(default_factory=lambda: ["request", "response"])
    hash_key: str | None = None
    """The HMAC key of `hash` (write it as a secret placeholder); required when any kind hashes."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; known: {list(KINDS)}")

    def actions(self) -> dict[str, Action]:
        """The action of every kind that is scanned for."""
        chosen = {kind: self.kinds.get(kind, self.default) for kind in KINDS}
        return {kind: action for kind, action in chosen.items() if action != "off"}


def redaction_settings(raw: Any) -> RedactionSettings | None:
    if raw is None:
        return None
    try:
        settings = msgspec.convert(raw, RedactionSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"redaction: {exc}") from None
    if "hash" in settings.actions().values() and not settings.hash_key:
        raise ConfigError("redaction: a kind is hashed but no hash_key is set")
    return settings if settings.actions() and settings.on else None
