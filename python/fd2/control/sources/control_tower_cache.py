"""Control Tower manifests, cached: what keeps fd2 serving whatever the Control Tower does.

- Steady state never waits on the Control Tower: a background task revalidates each entry before
  its TTL ends (with `If-None-Match` where an ETag was given), and a project is recompiled only
  when its content digest (timestamps excluded) changed.
- A miss is fetched once however many requests ask at once (single-flight), within a global rate
  of lookups for uncached projects; unknown projects are remembered for a short time.
- Stale-if-error: while the Control Tower fails, cached projects keep serving up to
  `max_stale` seconds past their TTL, then they are dropped (503 until it answers again).
- An invalid answer never replaces a good version; its validation report is kept as last error.
- With a shared store (Redis), copies and change notices travel between replicas.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

import msgspec

from fd2.control.manifests.models import NAME_PATTERN, ProjectManifest
from fd2.control.route_builder import RouteBuilder
from fd2.control.sources import control_tower_views
from fd2.control.sources.cache_state import CacheStats, ManifestShare, ProjectState, SharedCopy
from fd2.control.sources.control_tower_client import ControlTowerClient, ControlTowerUnavailable
from fd2.control.sources.lookup_limit import LookupLimiter
from fd2.serving.errors import ConfigError, NotFound, ServiceUnavailable
from fd2.telemetry.log_throttle import ThrottledLog

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from fd2.control.tasks import Supervisor

_log = logging.getLogger("fd2.manifests.control_tower")
REFRESH_AHEAD = 0.75
"""Entries are revalidated at this fraction of their TTL, so they never expire in use."""
_RETRY_AFTER_FAILURE_S = 1.0
_PROBE_EVERY_S = 2.0
_REFRESH_CONCURRENCY = 8
_TICK_S = 0.25


def manifest_digest(manifest: ProjectManifest) -> str:
    """A hash of what fd2 reads of a manifest: key order and the timestamps the Control Tower
    rewrites on every answer left out, so only a real change recompiles the project."""
    stable = msgspec.structs.replace(manifest, created_at=None, updated_at=None)
    return hashlib.sha256(msgspec.json.encode(stable, order="sorted")).hexdigest()


class ControlTowerCache:
    """The Control Tower as a `ManifestSource`: its answers cached, refreshed ahead of expiry."""

    kind = "control-tower"
    view_key = "control_tower"

    def __init__(
        self,
        client: ControlTowerClient,
        builder: RouteBuilder,
        *,
        ttl_s: float,
        max_stale_s: float = 3600.0,
        negative_ttl_s: float = 5.0,
        lookup_rate: float = 20.0,
        replica_id: str = "",
    ) -> None:
        self.client = client
        self._builder = builder
        self.ttl = ttl_s
        self.max_stale = max_stale_s
        self.negative_ttl = negative_ttl_s
        self.limiter = LookupLimiter(lookup_rate)
        self.replica_id = replica_id
        self.share: ManifestShare | None = None
        self.states: dict[str, ProjectState] = {}
        self.stats = CacheStats()
        self.reachable: bool | None = None  # None until the Control Tower was first asked
        self._inflight: dict[str, asyncio.Task[bool]] = {}
        self._probed_at = -_PROBE_EVERY_S
        self._contact_at = -_PROBE_EVERY_S
        self._outage_log = ThrottledLog(_log)

    # -- ManifestSource ---------------------------------------------------------------------

    async def start(self, tasks: Supervisor) -> None:
        # Nothing to load up front: projects are fetched on their first request.
        tasks.every("control tower refresh", _TICK_S, self.tick)

    def usable(self) -> bool:
        if self.reachable:
            return True
        return any(state.known and self._serving(p) for p, state in self.states.items())

    def serves(self, project: str) -> bool:
        state = self.states.get(project)
        return state is not None and state.known and self._serving(project)

    async def lookup(self, project: str) -> None:
        await self.ensure(project)

    async def refresh(self, project: str) -> Mapping[str, object] | None:
        changed = await self.refresh_now(project)
        state = self.states.get(project)
        if state is not None and state.last_error:
            raise ServiceUnavailable(
                f"Refetching {project!r} failed ({state.last_error}); "
                "the cached version keeps serving."
            )
        return {
            "project": project,
            "source": self.kind,
            "changed": changed,
            "digest": self._builder.digest(project),
            "version": self._builder.version_of(project),
            "route_table_version": self._builder.table.version,
        }

    def describe(self) -> Mapping[str, Any]:
        return control_tower_views.describe(self)

    def describe_project(self, project: str) -> Mapping[str, Any]:
        return control_tower_views.describe_project(self, project)

    def failing(self, served: AbstractSet[str]) -> Iterable[Mapping[str, Any]]:
        return control_tower_views.failing(self, served)

    def metric_families(self) -> Iterable[Metric]:
        return control_tower_views.metric_families(self)

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- requests ---------------------------------------------------------------------------

    async def ensure(self, project: str) -> None:
        """Make an uncached `project` known to the route table, or raise why it cannot be.

        NotFound for a project the Control Tower does not have; ServiceUnavailable when it cannot
        be asked (down, erroring, or the lookup rate for uncached projects is spent).
        """
        state = self.states.get(project)
        if (
            state is not None
            and state.failure is not None
            and time.monotonic() - state.fetched_at < self.negative_ttl
        ):
            raise state.failure
        fetch = self._inflight.get(project)
        if fetch is None:
            if not NAME_PATTERN.match(project):
                raise NotFound(f"Unknown project {project!r}.")
            if not self.limiter.try_acquire():
                raise ServiceUnavailable(
                    "Too many lookups of projects not yet known to this gateway; "
                    "try again in a moment.",
                    code="lookup_throttled",
                )
            fetch = self._start(project, forced=False)
        await asyncio.shield(fetch)

    async def refresh_now(self, project: str) -> bool:
        """The admin push: refetch `project` now. True when its routes changed."""
        fetch = self._inflight.get(project) or self._start(project, forced=True)
        return await asyncio.shield(fetch)

    def _start(self, project: str, *, forced: bool) -> asyncio.Task[bool]:
        # The fetch runs in a task of its own: a requester that goes away (and is cancelled)
        # does not cancel the fetch the other requesters are waiting for.
        fetch = asyncio.get_running_loop().create_task(self._refresh(project, forced=forced))
        self._inflight[project] = fetch
        fetch.add_done_callback(lambda done: self._fetch_done(project, done))
        return fetch

    def _fetch_done(self, project: str, fetch: asyncio.Task[bool]) -> None:
        self._inflight.pop(project, None)
        if not fetch.cancelled():
            fetch.exception()  # retrieved here, so a fetch nobody waits for any more is quiet

    # -- fetching ---------------------------------------------------------------------------

    def _serving(self, project: str) -> bool:
        return project in self._builder.table.projects

    async def _refresh(self, project: str, *, forced: bool) -> bool:
        state = self.states.setdefault(project, ProjectState())
        if not forced and self.share is not None and await self._adopt_shared(project, state):
            return True
        serving = self._serving(project)
        try:
            answer = await self.client.fetch(project, etag=state.etag if serving else None)
        except ControlTowerUnavailable as exc:
            self._contact_at = time.monotonic()
            self.reachable = False
            self.stats.count("error")
            return self._failed(project, state, f"Control Tower: {exc}")
        except ConfigError as exc:  # it answered, with a manifest that does not validate
            self.reachable = True
            self._contact_at = time.monotonic()
            return self._rejected(project, state, exc.message)
        self.reachable = True
        now = self._contact_at = time.monotonic()
        if answer.not_modified:
            self.stats.count("not_modified")
            self._confirmed(state, now)
            return False
        if answer.manifest is None:
            self.stats.count("not_found")
            state.known, state.fetched_at = False, now
            state.failure = NotFound(f"Unknown project {project!r}.")
            if serving:
                await self._apply(project, None, "", now)
                await self._publish(project, None, "")
            raise state.failure
        state.etag = answer.etag
        self._confirmed(state, now)
        digest = manifest_digest(answer.manifest)
        changed = await self._apply(project, answer.manifest, digest, now)
        self.stats.count("changed" if changed else "unchanged")
        if changed:
            await self._publish(project, answer.manifest, digest)
        return changed

    def _rejected(self, project: str, state: ProjectState, problem: str) -> bool:
        self.stats.count("rejected")
        self._outage_log.error(
            f"rejected:{project}:{problem}",
            "control tower manifest for %s rejected: %s",
            project,
            problem,
        )
        return self._failed(project, state, problem, rejected=True)

    async def _publish(self, project: str, manifest: ProjectManifest | None, digest: str) -> None:
        if self.share is not None:
            await self.share.publish(
                SharedCopy(
                    project=project,
                    digest=digest,
                    manifest=manifest,
                    fetched_at=time.time(),
                    sender=self.replica_id,
                )
            )

    def _confirmed(self, state: ProjectState, now: float) -> None:
        state.known = True
        state.failure = None
        state.fetched_at = now
        state.next_refresh = now + self.ttl * REFRESH_AHEAD
        state.last_error = None

    def _failed(
        self, project: str, state: ProjectState, problem: str, *, rejected: bool = False
    ) -> bool:
        now = time.monotonic()
        state.last_error, state.last_error_at = problem, time.time()
        if self._serving(project):
            state.next_refresh = now + min(_RETRY_AFTER_FAILURE_S * 5, self.ttl * REFRESH_AHEAD)
            self._outage_log.warning(
                problem, "%s; serving the cached %s (age %.0fs)", problem, project, self.age(state)
            )
            return False
        state.known, state.fetched_at = False, now
        state.failure = ServiceUnavailable(
            f"The manifest of project {project!r} is invalid; see the gateway logs."
            if rejected
            else f"No manifest is available for project {project!r}: "
            "the Control Tower cannot be reached."
        )
        raise state.failure

    async def _apply(
        self, project: str, manifest: ProjectManifest | None, digest: str, now: float
    ) -> bool:
        manifests = None if manifest is None else [(f"control-tower:{project}", manifest)]
        changed = await self._builder.apply_project(project, manifests, digest)
        state = self.states.setdefault(project, ProjectState())
        if changed:
            state.changed_at = time.time()
        state.digest = digest
        version = manifest.version if manifest is not None else None
        state.version = str(version) if version else None
        return changed

    # -- replicas ---------------------------------------------------------------------------

    async def _adopt_shared(self, project: str, state: ProjectState) -> bool:
        """Use a copy another replica fetched recently instead of asking the Control Tower."""
        assert self.share is not None
        copy = await self.share.get(project)
        if copy is None or copy.manifest is None or copy.sender == self.replica_id:
            return False
        age = time.time() - copy.fetched_at
        if age > self.ttl * REFRESH_AHEAD / 2 or age < 0:
            return False
        await self.accept_notice(copy)
        self.stats.shared_copies_used += 1
        return True

    async def accept_notice(self, copy: SharedCopy) -> None:
        """A change another replica noticed (or a fresh copy): apply it here."""
        state = self.states.get(copy.project)
        if copy.sender == self.replica_id or state is None:
            return  # a project this replica never served is fetched (or adopted) on its first use
        now = time.monotonic()
        if copy.manifest is None:
            state.known, state.fetched_at = False, now
            state.failure = NotFound(f"Unknown project {copy.project!r}.")
            if self._serving(copy.project):
                await self._apply(copy.project, None, "", now)
            return
        try:
            await self._apply(copy.project, copy.manifest, copy.digest, now)
        except ConfigError as exc:  # the sender validated it; a newer fd2 may differ
            state.last_error = exc.message
            return
        state.source = "redis"
        state.etag = None  # the ETag belonged to the other replica's conversation
        self._confirmed(state, now - max(0.0, time.time() - copy.fetched_at))

    # -- background -------------------------------------------------------------------------

    def age(self, state: ProjectState) -> float:
        return time.monotonic() - state.fetched_at

    def staleness(self, state: ProjectState) -> float:
        """Seconds past the TTL the served copy is (0 while fresh)."""
        return max(0.0, self.age(state) - self.ttl) if state.known else 0.0

    async def tick(self) -> None:
        now = time.monotonic()
        due: list[str] = []
        # Readiness must not wait for traffic: while the Control Tower is unproven, and when no
        # fetch has told anything for a while, ask it one cheap question.
        quiet_for = now - max(self._probed_at, self._contact_at)
        if quiet_for >= (_PROBE_EVERY_S if not self.reachable else min(max(self.ttl, 1.0), 30.0)):
            self._probed_at = now
            self.reachable = await self.client.probe()
        for project, state in list(self.states.items()):
            if not state.known or project in self._inflight:
                continue
            if now - state.fetched_at > self.ttl + self.max_stale and self._serving(project):
                _log.error(
                    "manifest of %s is stale past --manifest-max-stale; no longer served", project
                )
                state.known, state.fetched_at = False, now
                state.failure = ServiceUnavailable(
                    f"The manifest of project {project!r} is too old to serve and the "
                    "Control Tower cannot be reached."
                )
                await self._apply(project, None, "", now)
                continue
            if now >= state.next_refresh:
                due.append(project)
        # A few at a time: a slow Control Tower must not serialise every project's refresh.
        for first in range(0, len(due), _REFRESH_CONCURRENCY):
            batch = due[first : first + _REFRESH_CONCURRENCY]
            await asyncio.gather(*(self._background_refresh(project) for project in batch))

    async def _background_refresh(self, project: str) -> None:
        try:
            await asyncio.shield(self._inflight.get(project) or self._start(project, forced=False))
        except (NotFound, ServiceUnavailable):
            pass  # recorded in the state (negative entry, or the kept copy)
        except Exception as exc:  # keep refreshing the others
            self._outage_log.error(
                f"refresh:{type(exc).__name__}",
                "refreshing %s failed: %s",
                project,
                type(exc).__name__,
            )
