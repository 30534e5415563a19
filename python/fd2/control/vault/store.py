"""The `vault:` backend of one Vault: KV v2 secrets cached with a TTL, reread in the background.

Module loads read through the cache (a fresh entry costs no Vault call); `refresh` rereads every
entry older than the TTL and reports which secrets changed, so their users can be rebuilt. When
Vault fails, a secret already known keeps its last value (logged once) rather than failing a load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fd2.control.vault.session import VaultFailure, VaultSession
from fd2.serving.errors import SecretError

_log = logging.getLogger("fd2.vault")


class VaultReadError(SecretError):
    """Vault could not answer now (down, sealed, refused): a later load may succeed."""


@dataclass
class _Entry:
    data: dict[str, Any]
    version: int
    fetched_at: float
    failing: bool = False
    missing: bool = False
    """Vault said 404: remembered like a value, so it is asked again only after the TTL."""


def parse_vault_locator(reference: str, locator: str) -> tuple[str, str, str]:
    """`secret/data/acme/prod#key` (or `//secret/...`) → mount, path, key."""
    location, sep, key = locator.removeprefix("//").partition("#")
    mount, data_sep, path = location.partition("/data/")
    if not sep or not key or not data_sep or not mount or not path.strip("/"):
        raise SecretError(
            f"secret reference {reference!r} is not of the form vault:<mount>/data/<path>#<key>"
        )
    return mount.strip("/"), path.strip("/"), key


def secret_path(mount: str, path: str) -> str:
    """The name a changed secret is reported under: `<mount>/data/<path>`."""
    return f"{mount}/data/{path}"


class VaultStore:
    def __init__(self, session: VaultSession, clock: Callable[[], float] = time.monotonic) -> None:
        self.session = session
        self.ttl_s = session.settings.secret_ttl_s
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()

    def resolve(self, reference: str, locator: str) -> str:
        """The SecretBackend call: blocks on Vault when the entry is missing or expired."""
        mount, path, key = parse_vault_locator(reference, locator)
        with self._lock:
            entry = self._entries.get((mount, path))
            if entry is None or self._clock() - entry.fetched_at >= self.ttl_s:
                entry = self._fetch(reference, mount, path, entry)
        if entry.missing:
            raise SecretError(f"secret reference {reference!r}: no such secret in Vault (404)")
        if key not in entry.data:
            raise SecretError(f"secret reference {reference!r}: the secret has no key {key!r}")
        value = entry.data[key]
        if not isinstance(value, str | int | float):
            raise SecretError(f"secret reference {reference!r}: not a scalar value")
        return str(value)

    def refresh(self) -> set[str]:
        """Rereads entries older than the TTL; returns the paths whose content changed."""
        changed: set[str] = set()
        with self._lock:
            now = self._clock()
            for (mount, path), entry in list(self._entries.items()):
                if now - entry.fetched_at < self.ttl_s:
                    continue
                try:
                    data, version = self.session.read(mount, path)
                except VaultFailure as exc:
                    if entry.missing and exc.missing:
                        entry.fetched_at = self._clock()  # still absent: nothing changed
                    else:
                        self._note_failure(mount, path, entry, exc)
                    continue
                if entry.failing:
                    _log.info("vault: %s readable again", secret_path(mount, path))
                if entry.missing or data != entry.data:
                    changed.add(secret_path(mount, path))
                self._entries[(mount, path)] = _Entry(data, version, self._clock())
        return changed

    def _fetch(self, reference: str, mount: str, path: str, old: _Entry | None) -> _Entry:
        try:
            data, version = self.session.read(mount, path)
        except VaultFailure as exc:
            if old is not None and not old.missing:
                self._note_failure(mount, path, old, exc)
                return old  # stale-if-error: the last value read beats no value
            if exc.missing:
                entry = _Entry({}, 0, self._clock(), missing=True)
                self._entries[(mount, path)] = entry
                return entry
            message = f"secret reference {reference!r}: {exc.reason}"
            if not exc.retryable:  # fd2's own configuration: no rebuild loop will mend it
                raise SecretError(message) from None
            raise VaultReadError(message) from None
        entry = _Entry(data, version, self._clock())
        self._entries[(mount, path)] = entry
        return entry

    def _note_failure(self, mount: str, path: str, entry: _Entry, exc: VaultFailure) -> None:
        if not entry.failing:  # once per outage, not once per retry
            _log.warning(
                "vault: cannot reread %s (%s); keeping its last value",
                secret_path(mount, path),
                exc.reason,
            )
        entry.failing = True
