"""Target choice: each strategy over real Target objects."""

from __future__ import annotations

import time
from collections import Counter

from fd2.module import Timeouts
from fd2_inference.deployments.attempt import classify, retry_after
from fd2_inference.deployments.config import BreakerSpec, TargetSpec
from fd2_inference.deployments.strategies import make_strategy
from fd2_inference.deployments.target import Target


def _targets(*specs: dict[str, object]) -> list[Target]:
    return [
        Target(
            "alias",
            index,
            TargetSpec(base_url="http://127.0.0.1:1/v1", **spec),  # type: ignore[arg-type]
            None,
            Timeouts(),
            BreakerSpec(),
        )
        for index, spec in enumerate(specs)
    ]


def test_smooth_round_robin_follows_the_weights_spread_out() -> None:
    targets = _targets({"weight": 5}, {"weight": 1}, {"weight": 1})
    strategy = make_strategy("round_robin", targets)
    now = time.monotonic()
    order = [targets.index(strategy.pick(targets, now)) for _ in range(7)]
    assert order == [0, 0, 1, 0, 2, 0, 0]


def test_least_in_flight_prefers_the_idle_target() -> None:
    targets = _targets({}, {})
    targets[0].in_flight = 10
    strategy = make_strategy("least_in_flight", targets)
    picks = Counter(targets.index(strategy.pick(targets, 0.0)) for _ in range(100))
    assert picks == {1: 100}  # with two candidates both are always compared


def test_lowest_latency_tries_the_unmeasured_first_then_the_fastest() -> None:
    targets = _targets({}, {})
    strategy = make_strategy("lowest_latency", targets)
    targets[0].answered(0.5)
    assert strategy.pick(targets, 0.0) is targets[1]
    targets[1].answered(0.05)
    picks = Counter(targets.index(strategy.pick(targets, 0.0)) for _ in range(400))
    assert picks[1] > 350


def test_usage_picks_the_most_headroom() -> None:
    targets = _targets({"tpm": 1000}, {"tpm": 1000})
    now = time.monotonic()
    targets[0].charge(900, now)
    strategy = make_strategy("usage", targets)
    assert strategy.pick(targets, now) is targets[1]


def test_priority_fails_over_down_the_list() -> None:
    targets = _targets({"priority": 1}, {"priority": 0}, {"priority": 2})
    strategy = make_strategy("priority", targets)
    assert strategy.pick(targets, 0.0) is targets[1]
    assert strategy.pick([targets[0], targets[2]], 0.0) is targets[0]


def test_limits_make_a_target_ineligible() -> None:
    (target,) = _targets({"rpm": 2, "max_in_flight": 5})
    now = time.monotonic()
    target.started(now)
    target.started(now)
    assert not target.eligible(now)  # 2 requests this minute
    (full,) = _targets({"max_in_flight": 1})
    full.started(now)
    assert not full.eligible(now)


def test_classify_and_retry_after() -> None:
    assert classify(429, b"{}") == "429"
    assert classify(503, None) == "5xx"
    assert classify(400, b'{"error":{"code":"context_length_exceeded"}}') == "context_length"
    assert classify(400, b'{"error":{"code":"content_filter"}}') == "content_filter"
    assert classify(400, b'{"error":{"code":"other"}}') is None
    assert retry_after("2") == 2.0
    assert retry_after("9999") == 60.0
    assert retry_after(None) == 1.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
