"""Project-scoped API keys, stored only as HMAC-SHA-256 hashes and compared in constant time.

A key record (in a manifest's `api_keys`, or in Redis under `fd2:apikey:<hash>`) names the project
it belongs to and may narrow it to some modules, environments and models, with its own limits.
The key itself is never stored: `fd2 keys new` prints it once, with the hash to store.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec

from fd2._native import KeyDigester
from fd2.control.environments import canonical_environment
from fd2.limits.specs import parse_limits
from fd2.serving.errors import ConfigError

if TYPE_CHECKING:
    from fd2.auth.identity import Identity

KEY_PREFIX: Final = "fd2_"
_HASH_LENGTH: Final = 64


class ApiKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What a manifest (or Redis) stores about one key: never the key itself."""

    id: str
    hash: str
    project: str | None = None
    """The project the key belongs to; defaults to the manifest's project."""
    modules: list[str] | None = None
    environments: list[str] | None = None
    models: list[str] | None = None
    limits: dict[str, Any] | None = None
    disabled: bool = False


class ApiKey:
    """A usable key record: its scope as sets, its limits checked."""

    __slots__ = (
        "digest",
        "environments",
        "id",
        "limits",
        "models",
        "modules",
        "project",
        "route_identities",
    )

    def __init__(self, record: ApiKeyRecord, default_project: str) -> None:
        digest = record.hash.lower().removeprefix("hmac-sha256:")
        if len(digest) != _HASH_LENGTH or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"api key {record.id!r}: hash must be 64 hex digits (HMAC-SHA-256)")
        self.id = record.id
        self.digest = bytes.fromhex(digest)
        self.project = record.project or default_project
        self.modules = frozenset(record.modules) if record.modules is not None else None
        self.environments = (
            frozenset(canonical_environment(e) for e in record.environments)
            if record.environments is not None
            else None
        )
        self.models = frozenset(record.models) if record.models is not None else None
        self.limits = parse_limits(record.limits, f"api key {record.id!r} limits")
        self.route_identities: dict[tuple[str, str], Identity | None] = {}
        """What this key is on each (module, environment) it was checked on (Redis-stored keys)."""

    def allows_route(self, project: str, module: str, environment: str) -> bool:
        return (
            self.project == project
            and (self.modules is None or module in self.modules)
            and (self.environments is None or environment in self.environments)
        )


class KeyHasher:
    """HMAC-SHA-256 with the gateway's pepper, so a leaked hash list cannot be brute-forced
    without the pepper too."""

    __slots__ = ("_keyed",)

    def __init__(self, pepper: bytes = b"") -> None:
        # Keyed once (native): hashing a key is then ~3k instructions, not OpenSSL's ~24k.
        self._keyed = KeyDigester(pepper)

    def digest(self, key: str) -> bytes:
        return self._keyed.digest(key)

    def __repr__(self) -> str:
        return "<KeyHasher>"  # never the pepper


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def decode_records(raw: Any, where: str) -> list[ApiKeyRecord]:
    try:
        return msgspec.convert(raw or [], list[ApiKeyRecord], strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None


class KeyTable:
    """The keys a route can check, by digest. Lookup by digest, then a constant-time compare."""

    __slots__ = ("_by_digest",)

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._by_digest: Mapping[bytes, ApiKey] = {key.digest: key for key in keys}

    def __len__(self) -> int:
        return len(self._by_digest)

    def values(self) -> Iterable[ApiKey]:
        return self._by_digest.values()

    def find(self, digest: bytes) -> ApiKey | None:
        key = self._by_digest.get(digest)
        # The dict lookup compares hashes of hashes; the final check is constant time anyway.
        if key is not None and hmac.compare_digest(key.digest, digest):
            return key
        return None
