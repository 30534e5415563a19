"""Public keys from a JWKS URL: fetched asynchronously, cached, refreshed for an unknown `kid`.

A token naming a `kid` the cache does not know triggers one refresh, at most every
`min_refresh_s` (single-flight), so a flood of made-up `kid`s cannot flood the key server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import jwt

_log = logging.getLogger("fd2.auth")


class JwksKeys:
    def __init__(
        self,
        url: str,
        http: aiohttp.ClientSession,
        *,
        ttl_s: float = 300.0,
        min_refresh_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self._http = http
        self._ttl_s = ttl_s
        self._min_refresh_s = min_refresh_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._keys: dict[str, Any] = {}
        self._fetched_at = -1e18
        self._attempted_at = -1e18
        self._refresh: asyncio.Task[None] | None = None

    async def key(self, kid: str | None) -> Any | None:
        """The key for `kid` (the only key when a token names none), or None."""
        now = time.monotonic()
        stale = now - self._fetched_at > self._ttl_s
        found = self._lookup(kid)
        if (found is None or stale) and now - self._attempted_at >= self._min_refresh_s:
            await self._refreshed()
            found = self._lookup(kid)
        return found

    def _lookup(self, kid: str | None) -> Any | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refreshed(self) -> None:
        if self._refresh is None or self._refresh.done():
            self._attempted_at = time.monotonic()
            self._refresh = asyncio.get_running_loop().create_task(self._fetch())
        await asyncio.shield(self._refresh)

    async def _fetch(self) -> None:
        try:
            async with self._http.get(self.url, timeout=self._timeout) as response:
                response.raise_for_status()
                data = await response.json(content_type=None)
            keys = {}
            for entry in jwt.PyJWKSet.from_dict(data).keys:
                keys[entry.key_id or ""] = entry.key
        except (aiohttp.ClientError, TimeoutError, jwt.PyJWTError, ValueError) as exc:
            _log.warning("JWKS %s could not be fetched: %s", self.url, type(exc).__name__)
            return
        self._keys = keys
        self._fetched_at = time.monotonic()
