"""The state the manifest cache keeps per project, and what replicas exchange."""

from __future__ import annotations

from typing import Protocol

import msgspec

from fd2.control.manifests.models import ProjectManifest
from fd2.serving.errors import Fd2Error


class SharedCopy(msgspec.Struct, frozen=True, kw_only=True):
    """A manifest as one replica fetched it; `manifest` None means the project is gone.

    Decoded from Redis in one pass, the manifest validated on the way in like a Control Tower
    answer."""

    project: str
    digest: str
    manifest: ProjectManifest | None
    fetched_at: float
    """Wall-clock time of the fetch (replicas share no monotonic clock)."""
    sender: str


class ManifestShare(Protocol):
    """Where replicas share copies and change notices (Redis; see redis_share.py)."""

    async def get(self, project: str) -> SharedCopy | None: ...

    async def publish(self, copy: SharedCopy) -> None: ...


class ProjectState:
    """What fd2 knows of one project's manifest: shown by /admin/routes and /metrics."""

    __slots__ = (
        "changed_at",
        "digest",
        "etag",
        "failure",
        "fetched_at",
        "known",
        "last_error",
        "last_error_at",
        "next_refresh",
        "source",
        "version",
    )

    def __init__(self) -> None:
        self.known = False
        self.digest = ""
        self.etag: str | None = None
        self.version: str | None = None
        self.source = "control-tower"
        self.fetched_at = 0.0  # monotonic: last answer that confirmed the copy
        self.changed_at = 0.0  # wall clock: when the served content last changed
        self.next_refresh = 0.0
        self.failure: Fd2Error | None = None  # negative cache: what a request is told
        self.last_error: str | None = None
        self.last_error_at = 0.0


class CacheStats:
    """Counters updated on the control plane only (read by /metrics)."""

    def __init__(self) -> None:
        self.fetches: dict[str, int] = {}
        """Control Tower answers by outcome: changed, unchanged, not_modified, not_found,
        rejected, error."""
        self.shared_copies_used = 0

    def count(self, outcome: str) -> None:
        self.fetches[outcome] = self.fetches.get(outcome, 0) + 1
