"""The Control Tower as a manifest source: fetch on a miss, cache with a TTL, refresh in the
background, and keep serving what is cached while the Control Tower is unreachable.

This is the foundation's version: single-flight fetches, a short negative cache, and
stale-if-error. ETags, bounded staleness, Redis sharing and admin pushes build on it later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from fd2.errors import ConfigError, NotFound, ServiceUnavailable
from fd2.manifests.compile import content_digest
from fd2.manifests.decode import convert_manifest
from fd2.manifests.models import NAME_PATTERN
from fd2.route_builder import RouteBuilder
from fd2.secrets import Secret

_log = logging.getLogger("fd2.manifests.control_tower")
_json_object = msgspec.json.Decoder(dict[str, Any])


class ControlTowerUnavailable(Exception):
    """The Control Tower could not give an answer (unreachable, timeout, 5xx, garbage)."""


class ControlTowerClient:
    def __init__(self, base_url: str, *, secret: Secret | None, timeout_s: float = 5.0) -> None:
        headers = {"accept": "application/json", "user-agent": "fd2"}
        if secret is not None:
            headers["x-dspai-client-secret"] = secret.reveal()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    async def fetch(self, project: str) -> dict[str, Any] | None:
        """The project's manifest as a JSON object, or None when the Control Tower has none."""
        try:
            response = await self._http.get(f"/manifests/{quote(project, safe='')}")
        except httpx.HTTPError as exc:
            raise ControlTowerUnavailable(type(exc).__name__) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ControlTowerUnavailable(f"HTTP {response.status_code}")
        try:
            return _json_object.decode(response.content)
        except msgspec.DecodeError:
            raise ControlTowerUnavailable("answer is not a JSON object") from None

    async def aclose(self) -> None:
        await self._http.aclose()


class _Entry:
    __slots__ = ("fetched_at", "known")

    def __init__(self, fetched_at: float, known: bool) -> None:
        self.fetched_at = fetched_at
        self.known = known


class ControlTowerCache:
    """Projects fetched from the Control Tower, compiled into the route table."""

    def __init__(
        self,
        client: ControlTowerClient,
        builder: RouteBuilder,
        *,
        ttl_s: float,
        negative_ttl_s: float = 5.0,
    ) -> None:
        self._client = client
        self._builder = builder
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[None]] = {}

    async def ensure(self, project: str) -> None:
        """Make `project` known to the route table, fetching it once however many ask at once.

        Raises NotFound for a project the Control Tower does not have and ServiceUnavailable when
        it cannot be asked and nothing is cached.
        """
        entry = self._entries.get(project)
        if (
            entry is not None
            and not entry.known
            and time.monotonic() - entry.fetched_at < self._negative_ttl
        ):
            raise NotFound(f"Unknown project {project!r}.")
        fetch = self._inflight.get(project)
        if fetch is None:
            # The fetch runs in a task of its own: a requester that goes away (and is cancelled)
            # does not cancel the fetch the other requesters are waiting for.
            fetch = asyncio.get_running_loop().create_task(self._refresh(project))
            self._inflight[project] = fetch
            fetch.add_done_callback(lambda done: self._fetch_done(project, done))
        await asyncio.shield(fetch)

    def _fetch_done(self, project: str, fetch: asyncio.Task[None]) -> None:
        self._inflight.pop(project, None)
        if not fetch.cancelled():
            fetch.exception()  # retrieved here, so a fetch nobody waits for any more is quiet

    async def _refresh(self, project: str) -> None:
        if not NAME_PATTERN.match(project):
            raise NotFound(f"Unknown project {project!r}.")
        try:
            raw = await self._client.fetch(project)
        except ControlTowerUnavailable as exc:
            if project in self._builder.table.projects:
                _log.warning("control tower unreachable (%s); serving cached %s", exc, project)
                entry = self._entries.get(project)
                if entry is not None:
                    entry.fetched_at = time.monotonic()  # try again after another TTL
                return
            raise ServiceUnavailable(
                f"No manifest is available for project {project!r}: "
                "the Control Tower cannot be reached."
            ) from None
        now = time.monotonic()
        if raw is None:
            self._entries[project] = _Entry(now, known=False)
            if project in self._builder.table.projects:
                await self._builder.apply_project(project, None, "")
            raise NotFound(f"Unknown project {project!r}.")
        try:
            manifest = convert_manifest(raw, origin=f"control-tower:{project}")
        except ConfigError as exc:
            _log.error("control tower manifest rejected: %s", exc.message)
            if project in self._builder.table.projects:
                self._entries[project] = _Entry(now, known=True)
                return  # the previous good version keeps serving
            raise ServiceUnavailable(
                f"The manifest of project {project!r} is invalid; see the gateway logs."
            ) from None
        self._entries[project] = _Entry(now, known=True)
        await self._builder.apply_project(
            project, [(f"control-tower:{project}", manifest)], content_digest(raw)
        )

    async def run(self, interval: float = 1.0) -> None:
        """Refresh known projects whose TTL has passed, in the background."""
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            due = [
                project
                for project, entry in self._entries.items()
                if entry.known and now - entry.fetched_at >= self._ttl
            ]
            for project in due:
                try:
                    await self.ensure(project)
                except (NotFound, ServiceUnavailable):
                    pass  # already recorded by ensure (negative entry or kept copy)
                except Exception as exc:  # keep refreshing the others
                    _log.error("refreshing %s failed: %s", project, type(exc).__name__)
