"""The breaker's states and the retry budget's bound, alone."""

from __future__ import annotations

import time

from fd2_inference.deployments.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from fd2_inference.deployments.budget import RetryBudget
from fd2_inference.deployments.config import BreakerSpec, BudgetSpec


def test_consecutive_failures_open_then_a_probe_closes() -> None:
    breaker = Breaker(BreakerSpec(consecutive_failures=3, open_s=0.05))
    for _ in range(2):
        breaker.failure()
    assert breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == OPEN
    assert not breaker.allows()
    time.sleep(0.06)
    assert breaker.allows()  # the one half-open probe
    assert breaker.state == HALF_OPEN
    assert not breaker.allows()  # no second probe at once
    breaker.success()
    assert breaker.state == CLOSED


def test_a_failed_probe_opens_again() -> None:
    breaker = Breaker(BreakerSpec(consecutive_failures=1, open_s=0.01))
    breaker.failure()
    time.sleep(0.02)
    assert breaker.allows()
    breaker.failure()
    assert breaker.state == OPEN
    assert breaker.opened == 2


def test_error_rate_over_the_window_opens() -> None:
    breaker = Breaker(BreakerSpec(consecutive_failures=100, error_rate=0.5, min_requests=10))
    for index in range(10):
        breaker.success() if index % 2 else breaker.failure()
    assert breaker.state == CLOSED  # 5 of 10 failed, but the rate is judged at a failure
    breaker.failure()
    assert breaker.state == OPEN


def test_budget_pays_at_most_its_share_of_requests() -> None:
    budget = RetryBudget(BudgetSpec(ratio=0.2, min_tokens=10))
    paid = 0
    for _ in range(1000):
        budget.deposit()
        while budget.withdraw():  # every request asks for as many retries as it can get
            paid += 1
    assert paid <= 0.2 * 1000 + 10
    assert paid >= 0.2 * 1000 - 1
    assert budget.denied >= 1000
