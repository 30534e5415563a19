"""What the Control Tower cache shows operators: its `/admin/routes` entries and its metrics.

Read from the cache's control-plane state when asked (a scrape, an admin request), never on the
hot path; never a secret (the client secret is not part of any of it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from fd2.control.sources.control_tower_cache import ControlTowerCache

_FAILING_SHOWN = 100


def describe(cache: ControlTowerCache) -> Mapping[str, Any]:
    return {
        "url": cache.client.base_url,
        "reachable": cache.reachable,
        "ttl_s": cache.ttl,
        "max_stale_s": cache.max_stale,
        "negative_ttl_s": cache.negative_ttl,
        "unknown_project_rate": cache.limiter.rate,
    }


def describe_project(cache: ControlTowerCache, project: str) -> Mapping[str, Any]:
    state = cache.states.get(project)
    if state is None:
        return {}
    staleness = cache.staleness(state)
    return {
        "source": state.source,
        "age_s": round(cache.age(state), 3),
        "staleness_s": round(staleness, 3),
        "stale": staleness > 0,
        "etag": state.etag is not None,
        "changed_at": _iso(state.changed_at),
        "last_error": state.last_error,
        "last_error_at": _iso(state.last_error_at),
    }


def failing(cache: ControlTowerCache, served: AbstractSet[str]) -> list[dict[str, Any]]:
    """Projects the Control Tower was asked for recently but that do not serve."""
    return [
        {"project": project, "error": state.failure.message if state.failure else state.last_error}
        for project, state in sorted(cache.states.items())
        if project not in served and (state.failure is not None or state.last_error)
    ][:_FAILING_SHOWN]


def metric_families(cache: ControlTowerCache) -> Iterator[Metric]:
    fetches = CounterMetricFamily(
        "fd2_control_tower_fetches",
        "Control Tower manifest answers by outcome (error = no usable answer)",
        labels=["outcome"],
    )
    for outcome, count in sorted(cache.stats.fetches.items()):
        fetches.add_metric([outcome], count)
    yield fetches
    throttled = CounterMetricFamily(
        "fd2_control_tower_lookups_throttled",
        "Lookups of uncached projects refused by --unknown-project-rate",
    )
    throttled.add_metric([], cache.limiter.refused)
    yield throttled
    shared = CounterMetricFamily(
        "fd2_manifest_shared_copies_used",
        "Manifests taken from a copy another replica shared through Redis instead of a fetch",
    )
    shared.add_metric([], cache.stats.shared_copies_used)
    yield shared
    age = GaugeMetricFamily(
        "fd2_manifest_age_seconds",
        "Seconds since the Control Tower last confirmed a project's manifest",
        labels=["project"],
    )
    stale = GaugeMetricFamily(
        "fd2_manifest_staleness_seconds",
        "Seconds a served manifest is past its TTL (0 while fresh)",
        labels=["project"],
    )
    for project, state in sorted(cache.states.items()):
        if state.known:
            age.add_metric([project], cache.age(state))
            stale.add_metric([project], cache.staleness(state))
    yield age
    yield stale


def _iso(wall: float) -> str | None:
    if not wall:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
