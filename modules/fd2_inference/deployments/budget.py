"""The retry budget: extra upstream attempts (retries, fallbacks, hedges) are paid from a balance
that each client request adds `ratio` to, so they stay at most that share of requests (plus the
small starting balance) however many targets fail: an outage cannot become a retry storm
(Finagle's and Envoy's retry budgets)."""

from __future__ import annotations

from fd2_inference.deployments.config import BudgetSpec


class RetryBudget:
    __slots__ = ("_balance", "_spec", "denied", "requests", "spent")

    def __init__(self, spec: BudgetSpec) -> None:
        self._spec = spec
        self._balance = spec.min_tokens
        self.requests = 0
        self.spent = 0
        self.denied = 0

    def deposit(self) -> None:
        """One client request arrived."""
        self.requests += 1
        self._balance = min(self._spec.max_tokens, self._balance + self._spec.ratio)

    def withdraw(self) -> bool:
        """Pay for one extra attempt; False (and nothing paid) when the budget is spent."""
        if self._balance < 1.0:
            self.denied += 1
            return False
        self._balance -= 1.0
        self.spent += 1
        return True

    @property
    def balance(self) -> float:
        return self._balance
