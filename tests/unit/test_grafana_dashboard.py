"""deploy/grafana/fd2.json: valid JSON whose queries name only metrics fd2 exports."""

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fd2.telemetry.metrics import MetricsRegistry

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fd2.json"
_METRIC = re.compile(r"\bfd2_[a-z_]+")
_CONTROL_PLANE = {"fd2_routes", "fd2_route_rebuild_seconds"}


def exported() -> set[str]:
    registry = MetricsRegistry()
    requests = registry.requests
    requests.finished("p", "m", "e", "/x", 200, 0.1)
    series = requests.route("p", "m", "e")
    series.ttft.observe(0.1)
    series.active.inc()
    for counter in (requests.limit_decisions, requests.auth_failures, requests.upstream_errors):
        requests.count(counter, "p", "m", "e", "x")
    requests.tokens.labels("p", "m", "e", "in").inc()
    names = set()
    for family in text_string_to_metric_families(registry.render().decode()):
        names.update(sample.name for sample in family.samples)
    return names | _CONTROL_PLANE | {name + "_count" for name in _CONTROL_PLANE}


def test_every_query_names_an_exported_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [
        var["query"]["query"]
        for var in dashboard["templating"]["list"]
        if "query" in var and isinstance(var["query"], dict)
    ]
    names = {name for query in queries for name in _METRIC.findall(query)}
    assert names, "the dashboard has no query"
    assert names <= exported(), names - exported()
