"""Every Vault fd2 talks to (its own, and those named by projects' `vault` modules), one session
and one cache each, and the background task that keeps their secrets fresh."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from fd2.control.secrets import SecretResolver
from fd2.control.vault.session import VaultFailure, VaultSession
from fd2.control.vault.settings import VaultSettings
from fd2.control.vault.store import VaultStore
from fd2.telemetry.log_throttle import ThrottledLog

_log = logging.getLogger("fd2.vault")
_MIN_TICK_S = 0.2
_MAX_TICK_S = 60.0
_WAKE_S = 0.25
# Modules that could not load because Vault failed are retried this often (one read each).
_RETRY_S = 2.0

OnChange = Callable[[set[str], bool], Awaitable[object]]
"""Called with the `<mount>/data/<path>` names that changed, and whether to retry failed loads."""


class VaultPool:
    def __init__(
        self,
        credentials: SecretResolver,
        default: VaultSettings | None,
        *,
        default_ttl_s: float = 300.0,
    ) -> None:
        self._credentials = credentials
        self.default_ttl_s = default_ttl_s
        self._stores: dict[VaultSettings, VaultStore] = {}
        self._lock = threading.Lock()
        self._outage_log = ThrottledLog(_log)
        self.default = self.store_for(default) if default is not None else None

    def store_for(self, settings: VaultSettings) -> VaultStore:
        with self._lock:
            store = self._stores.get(settings)
            if store is None:
                store = VaultStore(VaultSession(settings, self._credentials))
                self._stores[settings] = store
                _log.info("vault %s: in use", settings.describe())
            return store

    def tick_s(self) -> float:
        """Refresh rounds run at half the shortest TTL: no secret outlives its TTL by much."""
        with self._lock:
            ttls = [store.ttl_s for store in self._stores.values()]
        return min(max(min(ttls, default=_MAX_TICK_S) / 2, _MIN_TICK_S), _MAX_TICK_S)

    def refresh(self) -> set[str]:
        """One blocking round over every store (run it in a worker thread)."""
        with self._lock:
            stores = list(self._stores.values())
        changed: set[str] = set()
        for store in stores:
            changed |= store.refresh()
        return changed

    async def run(self, on_change: OnChange) -> None:
        """Rereads secrets every `tick_s()`; every `_RETRY_S` lets failed loads be retried."""
        loop = asyncio.get_running_loop()
        last_refresh = last_retry = loop.time()
        while True:
            await asyncio.sleep(_WAKE_S)
            try:
                await self._renew_due_tokens()
                now = loop.time()
                changed: set[str] = set()
                if now - last_refresh >= self.tick_s():
                    last_refresh = now
                    changed = await asyncio.to_thread(self.refresh)
                    if changed:
                        _log.info(
                            "vault: %d secret(s) changed: %s",
                            len(changed),
                            ", ".join(sorted(changed)),
                        )
                retry = now - last_retry >= _RETRY_S
                if retry:
                    last_retry = now
                if changed or retry:
                    await on_change(changed, retry)
            except Exception as exc:  # the refresh task must outlive any one bad round
                self._outage_log.error(
                    f"round:{type(exc).__name__}",
                    "vault refresh round failed: %s",
                    type(exc).__name__,
                )

    async def _renew_due_tokens(self) -> None:
        with self._lock:
            due = [s.session for s in self._stores.values() if s.session.renewal_due()]
        for session in due:
            try:
                await asyncio.to_thread(session.keep_alive)
            except VaultFailure as exc:
                self._outage_log.warning(
                    f"renew:{session.settings.describe()}:{exc.reason}",
                    "vault %s: cannot renew or log in (%s)",
                    session.settings.describe(),
                    exc.reason,
                )

    def close(self) -> None:
        with self._lock:
            stores = list(self._stores.values())
        for store in stores:
            store.session.close()
