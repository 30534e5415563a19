"""What every manifest source is to the rest of fd2: one protocol, two implementations.

The local directory (`local.py`) and the Control Tower cache (`control_tower_cache.py`) both feed
the route builder and both answer readiness, `/admin/routes`, the admin refresh and `/metrics`
through these methods, so nothing outside `sources/` asks which one is configured. The runtime
holds them in order of precedence (the directory first: a project found there is served from
there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from fd2.control.tasks import Supervisor


class ManifestSource(Protocol):
    kind: str
    """How `/admin/routes` and the refresh answer name it: `directory`, `control-tower`."""
    view_key: str
    """Its entry in the `sources` object of `/admin/routes`."""

    async def start(self, tasks: Supervisor) -> None:
        """Load what must be there before serving, and start its background work on `tasks`."""

    def usable(self) -> bool:
        """Whether it can serve at the moment (readiness): it answers, or what it gave is still
        within its allowed staleness."""

    def serves(self, project: str) -> bool:
        """Whether the route table holds `project` from this source."""

    async def lookup(self, project: str) -> None:
        """Make a project not yet in the route table known to it, when this source looks
        projects up on demand (raise NotFound or ServiceUnavailable to say why not); a source
        that loads everything up front does nothing."""

    async def refresh(self, project: str) -> Mapping[str, object] | None:
        """The admin push: reload `project` now and say what happened; None when this source
        does not have the project and cannot look it up."""

    def describe(self) -> Mapping[str, Any]:
        """Its settings and state, for `/admin/routes` (never a secret)."""

    def describe_project(self, project: str) -> Mapping[str, Any]:
        """What it knows of one project it serves (age, staleness, last error), for
        `/admin/routes`."""

    def failing(self, served: AbstractSet[str]) -> Iterable[Mapping[str, Any]]:
        """Projects it was asked for that do not serve, each with its error."""

    def metric_families(self) -> Iterable[Metric]:
        """Its metrics, computed when `/metrics` is scraped."""

    async def aclose(self) -> None:
        """Release its connections (its background tasks are the supervisor's to stop)."""
