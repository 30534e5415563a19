"""`GET /metrics` in the Prometheus text format, computed when scraped.

Nothing here runs per request: the collector reads counters the control plane keeps (cache
outcomes, rebuilds) and the cache's entries when Prometheus asks, so the hot path takes no metric
lock. Metrics are per worker process (each worker has its own cache and route table); run one
worker per container, or scrape each worker, when that matters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from fd2.runtime import Runtime

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class _ControlPlaneCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        builder = self._runtime.builder
        routes = GaugeMetricFamily("fd2_routes", "Routes in the route table")
        routes.add_metric([], len(builder.table))
        yield routes
        rebuilds = SummaryMetricFamily(
            "fd2_route_rebuild_seconds", "Time to recompile one project and swap the table"
        )
        rebuilds.add_metric([], builder.rebuilds, builder.rebuild_seconds)
        yield rebuilds
        retired = GaugeMetricFamily(
            "fd2_retired_instances_open", "Replaced module instances still finishing requests"
        )
        retired.add_metric([], builder.retired_open())
        yield retired
        cache = self._runtime.control_tower
        if cache is None:
            return
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


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ControlPlaneCollector(runtime))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
