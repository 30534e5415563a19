"""The metrics a module registers (`ModuleContext.metrics`), shown by `GET /metrics`.

A module asks for a counter, gauge or histogram by a short name; fd2 names it
`fd2_<module_type>_<name>` and gives it the labels `project`, `module` and `environment` (filled
in for the instance) before the module's own. The same name asked for again (another instance,
a rebuilt route) is the same metric; asked for with another kind, help text or labels, it is a
`ConfigError` at set-up. Label values are bounded: past `max_series` label sets per route, new
values are counted under `other`, so a label fed from request data cannot grow the scrape (or
the worker's memory) without limit.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Final, cast

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram

from fd2.serving.errors import ConfigError

_log = logging.getLogger("fd2.metrics")
ROUTE_LABELS: Final = ("project", "module", "environment")
OVERFLOW: Final = "other"
DEFAULT_MAX_SERIES: Final = 100
_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_NOT_NAME: Final = re.compile(r"[^a-zA-Z0-9_]")

_Prom = PromCounter | PromGauge | PromHistogram


class _Family:
    """One registered metric, and the label sets each route has used (for the bound)."""

    def __init__(self, metric: _Prom, shape: tuple[object, ...], max_series: int) -> None:
        self.metric = metric
        self.shape = shape
        self.max_series = max_series
        self.series: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
        self.warned: set[tuple[str, ...]] = set()
        self.lock = threading.Lock()


class ModuleMetricFamilies:
    """Every family modules registered in one worker; owned by the worker's metrics registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._families: dict[str, _Family] = {}
        self._prefixes: dict[str, str] = {}

    def prefix(self, module_type: str) -> str:
        """`fd2_<module_type>_`, the type made a valid metric name (asked once per route)."""
        prefix = self._prefixes.get(module_type)
        if prefix is None:
            prefix = self._prefixes[module_type] = "fd2_" + _NOT_NAME.sub("_", module_type) + "_"
        return prefix

    def family(
        self,
        kind: str,
        name: str,
        documentation: str,
        labels: Sequence[str],
        max_series: int,
        buckets: Sequence[float] | None = None,
    ) -> _Family:
        shape = (kind, documentation, tuple(labels), tuple(buckets) if buckets else None)
        family = self._families.get(name)
        if family is not None:
            if family.shape != shape:
                raise ConfigError(
                    f"metric {name!r} is already registered with another kind, help text or labels"
                )
            return family
        names = (*ROUTE_LABELS, *labels)
        registry = self._registry
        try:
            metric: _Prom
            if kind == "counter":
                metric = PromCounter(name, documentation, names, registry=registry)
            elif kind == "gauge":
                metric = PromGauge(name, documentation, names, registry=registry)
            elif buckets:
                metric = PromHistogram(
                    name, documentation, names, registry=registry, buckets=tuple(buckets)
                )
            else:
                metric = PromHistogram(name, documentation, names, registry=registry)
        except ValueError as exc:  # e.g. `x` and `x_total`, which Prometheus sees as one name
            raise ConfigError(f"metric {name!r} cannot be registered ({exc})") from None
        family = self._families[name] = _Family(metric, shape, max_series)
        return family


class _Metric:
    """A module's metric, bound to its route."""

    __slots__ = ("_children", "_family", "_labels", "_name", "_route")

    def __init__(
        self, family: _Family, name: str, route: tuple[str, str, str], labels: Sequence[str]
    ) -> None:
        self._family = family
        self._name = name
        self._route = route
        self._labels = tuple(labels)
        self._children: dict[tuple[str, ...], _Prom] = {}

    def _child(self, values: dict[str, str]) -> _Prom:
        if set(values) != set(self._labels):
            raise ValueError(f"metric {self._name!r} takes the labels {', '.join(self._labels)}")
        key = tuple(str(values[label]) for label in self._labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._family.metric.labels(
                *self._route, *self._bounded(key)
            )
        return child

    def _plain(self) -> _Prom:
        if self._labels:
            raise ValueError(
                f"metric {self._name!r} has labels: use .labels({', '.join(self._labels)})"
            )
        return self._child({})

    def _bounded(self, key: tuple[str, ...]) -> tuple[str, ...]:
        family = self._family
        with family.lock:
            used = family.series.setdefault(self._route, set())
            if key in used or len(used) < family.max_series:
                used.add(key)
                return key
            if self._route not in family.warned:
                family.warned.add(self._route)
                _log.warning(
                    "metric %s: more than %d label sets for %s/%s [%s]; new ones count as %r",
                    self._name,
                    family.max_series,
                    *self._route,
                    OVERFLOW,
                )
        return (OVERFLOW,) * len(key)


class Counter(_Metric):
    __slots__ = ()

    def labels(self, **values: str) -> PromCounter:
        """The child for these label values (every declared label, by name)."""
        return cast(PromCounter, self._child(values))

    def inc(self, amount: float = 1.0) -> None:
        """For a metric without labels of its own."""
        cast(PromCounter, self._plain()).inc(amount)


class Gauge(_Metric):
    __slots__ = ()

    def labels(self, **values: str) -> PromGauge:
        return cast(PromGauge, self._child(values))

    def set(self, value: float) -> None:
        cast(PromGauge, self._plain()).set(value)

    def inc(self, amount: float = 1.0) -> None:
        cast(PromGauge, self._plain()).inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        cast(PromGauge, self._plain()).dec(amount)


class Histogram(_Metric):
    __slots__ = ()

    def labels(self, **values: str) -> PromHistogram:
        return cast(PromHistogram, self._child(values))

    def observe(self, value: float) -> None:
        cast(PromHistogram, self._plain()).observe(value)


class ModuleMetrics:
    """What `ModuleContext.metrics` is: registers metrics named and labelled for the module.
    One is made per route (10k in a full build), and most modules register nothing: it keeps
    its inputs, and names its metrics' prefix only on first use."""

    __slots__ = ("_families", "_module_type", "_prefix", "_route")

    def __init__(
        self,
        families: ModuleMetricFamilies,
        *,
        module_type: str,
        project: str,
        module: str,
        environment: str,
    ) -> None:
        self._families = families
        self._module_type = module_type
        self._prefix: str | None = None
        self._route = (project, module, environment)

    @classmethod
    def unregistered(cls) -> ModuleMetrics:
        """Metrics that go nowhere: the default of a context built outside the gateway (tests)."""
        families = ModuleMetricFamilies(CollectorRegistry(auto_describe=False))
        return cls(families, module_type="module", project="", module="", environment="")

    def counter(
        self,
        name: str,
        documentation: str,
        *,
        labels: Sequence[str] = (),
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> Counter:
        full = self._name(name, labels)
        family = self._families.family("counter", full, documentation, labels, max_series)
        return Counter(family, full, self._route, labels)

    def gauge(
        self,
        name: str,
        documentation: str,
        *,
        labels: Sequence[str] = (),
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> Gauge:
        full = self._name(name, labels)
        family = self._families.family("gauge", full, documentation, labels, max_series)
        return Gauge(family, full, self._route, labels)

    def histogram(
        self,
        name: str,
        documentation: str,
        *,
        labels: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> Histogram:
        full = self._name(name, labels)
        family = self._families.family(
            "histogram", full, documentation, labels, max_series, buckets
        )
        return Histogram(family, full, self._route, labels)

    def _name(self, name: str, labels: Sequence[str]) -> str:
        if not _NAME.match(name):
            raise ConfigError(f"metric name {name!r} must match {_NAME.pattern}")
        for label in labels:
            if not _NAME.match(label) or label.startswith("__") or label in ROUTE_LABELS:
                raise ConfigError(
                    f"metric {name!r}: label {label!r} is invalid or reserved "
                    f"({', '.join(ROUTE_LABELS)} are set by fd2)"
                )
        if len(set(labels)) != len(labels):
            raise ConfigError(f"metric {name!r}: a label is named twice")
        prefix = self._prefix
        if prefix is None:
            prefix = self._prefix = self._families.prefix(self._module_type)
        return prefix + name
