"""`GET /metrics` in the Prometheus text format: fd2's control plane and the modules' own metrics.

fd2's figures are computed when scraped: the collector reads counters the control plane keeps
(rebuilds, each manifest source's outcomes, module health) when Prometheus asks, so the hot path
takes no metric lock. Modules register theirs through `ModuleContext.metrics`
(`module_metrics.py`), in the same registry, and every request is counted by
`request_metrics.py`.

Under `fd2 serve` (prometheus-client's multi-process mode, `PROMETHEUS_MULTIPROC_DIR`) the request
and module metrics of every worker are read from their files at each scrape, so one scrape shows
all workers; the control-plane figures are the answering worker's own (every worker compiles the
same route table from the same sources).
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
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from fd2.serving.request_metrics import RequestMetrics, install, multiprocess
from fd2.telemetry.module_metrics import ModuleMetricFamilies, ModuleMetrics

if TYPE_CHECKING:
    from fd2.control.runtime import Runtime

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsRegistry:
    """One worker's metrics: what `/metrics` renders."""

    def __init__(self) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._multiprocess = multiprocess()
        self._collectors: list[Collector] = []
        self._modules = ModuleMetricFamilies(self._registry)
        self.requests = RequestMetrics(self._registry)
        install(self.requests)

    def add_collector(self, collector: Collector) -> None:
        if self._multiprocess:
            self._collectors.append(collector)
        else:
            self._registry.register(collector)

    def for_module(
        self, *, module_type: str, project: str, module: str, environment: str
    ) -> ModuleMetrics:
        """What one module instance registers its metrics through (its context's `metrics`)."""
        return ModuleMetrics(
            self._modules,
            module_type=module_type,
            project=project,
            module=module,
            environment=environment,
        )

    def render(self) -> bytes:
        self.requests.flush()  # this worker's figures up to now (others' within FLUSH_S)
        if not self._multiprocess:
            return generate_latest(self._registry)
        # Every worker's values, from the files; then this worker's control-plane collectors.
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in self._collectors:
            registry.register(collector)
        return generate_latest(registry)


class ControlPlaneCollector(Collector):
    """The route table, every manifest source and module health, read at scrape time."""

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
        restarts = CounterMetricFamily(
            "fd2_background_task_restarts",
            "Times a supervised background task failed and was started again",
            labels=["task"],
        )
        for task in self._runtime.tasks.tasks:
            restarts.add_metric([task.name], task.restarts)
        yield restarts
        yield from self._runtime.health.metric_families()
        for source in self._runtime.sources:
            yield from source.metric_families()
