"""Metrics modules register through their context: names, labels, sharing and bounds."""

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fd2.serving.errors import ConfigError
from fd2.telemetry.metrics import MetricsRegistry

DEV = {"project": "acme", "module": "chat", "environment": "dev"}


def value(registry: MetricsRegistry, name: str, **labels: str) -> float | None:
    """The sample `name` with exactly these labels, from the rendered text."""
    for family in text_string_to_metric_families(registry.render().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def route(registry: MetricsRegistry, module: str = "chat", environment: str = "dev"):
    return registry.for_module(
        module_type="prompt-runner", project="acme", module=module, environment=environment
    )


def test_names_are_prefixed_by_module_type_and_labels_start_with_the_route():
    registry = MetricsRegistry()
    metrics = route(registry)
    metrics.counter("prompts_total", "Prompts run", labels=("outcome",)).labels(outcome="ok").inc()
    metrics.gauge("cached_prompts", "Prompts in memory").set(3)
    metrics.histogram("render_seconds", "Render time", buckets=(0.1, 1.0)).observe(0.5)
    assert value(registry, "fd2_prompt_runner_prompts_total", **DEV, outcome="ok") == 1.0
    assert value(registry, "fd2_prompt_runner_cached_prompts", **DEV) == 3.0
    assert value(registry, "fd2_prompt_runner_render_seconds_bucket", **DEV, le="1.0") == 1.0


def test_instances_of_routes_share_one_family_and_keep_their_own_series():
    registry = MetricsRegistry()
    first = route(registry).counter("calls_total", "Calls")
    rebuilt = route(registry).counter("calls_total", "Calls")  # the route's next instance
    staging = route(registry, environment="staging").counter("calls_total", "Calls")
    first.inc()
    rebuilt.inc(2)
    staging.inc()
    assert value(registry, "fd2_prompt_runner_calls_total", **DEV) == 3
    staged = {**DEV, "environment": "staging"}
    assert value(registry, "fd2_prompt_runner_calls_total", **staged) == 1


@pytest.mark.parametrize(
    "register",
    [
        lambda m: m.gauge("calls_total", "Calls"),  # another kind
        lambda m: m.counter("calls_total", "Other help"),
        lambda m: m.counter("calls_total", "Calls", labels=("model",)),
        lambda m: m.counter("calls", "Calls"),  # Prometheus' own name for calls_total
    ],
)
def test_one_name_cannot_mean_two_metrics(register):
    registry = MetricsRegistry()
    route(registry).counter("calls_total", "Calls")
    with pytest.raises(ConfigError):
        register(route(registry))


@pytest.mark.parametrize(
    ("name", "labels"),
    [("bad-name", ()), ("ok", ("project",)), ("ok", ("__x",)), ("ok", ("a", "a")), ("ok", ("1",))],
)
def test_invalid_and_reserved_names_are_refused(name, labels):
    with pytest.raises(ConfigError):
        route(MetricsRegistry()).counter(name, "help", labels=labels)


def test_label_sets_are_bounded_per_route(caplog):
    registry = MetricsRegistry()
    counter = route(registry).counter("by_user_total", "x", labels=("user",), max_series=3)
    with caplog.at_level(logging.WARNING, logger="fd2.metrics"):
        for user in ("u1", "u2", "u3", "u4", "u5", "u1"):
            counter.labels(user=user).inc()
    name = "fd2_prompt_runner_by_user_total"
    assert value(registry, name, **DEV, user="u1") == 2
    assert value(registry, name, **DEV, user="other") == 2
    assert value(registry, name, **DEV, user="u5") is None
    assert caplog.text.count("new ones count as 'other'") == 1
    # Another route has a bound of its own.
    other = route(registry, module="embed").counter("by_user_total", "x", labels=("user",))
    other.labels(user="u9").inc()
    assert value(registry, name, **{**DEV, "module": "embed"}, user="u9") == 1


def test_labels_must_be_given_exactly():
    counter = route(MetricsRegistry()).counter("x_total", "x", labels=("model",))
    with pytest.raises(ValueError, match="takes the labels model"):
        counter.labels(other="1")
    with pytest.raises(ValueError, match="has labels"):
        counter.inc()
