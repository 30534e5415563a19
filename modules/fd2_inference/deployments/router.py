"""The attempt loop: one client request, its attempts across targets and fallback aliases.

Per request: pick a target by the alias's strategy among those eligible (breaker, Retry-After,
limits, in flight); on a failure the request's `retry_on` names, try another while the request
has attempts left and the module's retry budget pays; an alias whose targets are all spent hands
over to its `fallbacks` (a context-length or content-filter error jumps to its own fallback).
With hedging, a second attempt starts when the first has not answered after the delay; the first
good answer wins and the others are cancelled (their connections closed, their answers never
read for usage, so nothing is charged twice).

Everything here happens before a byte reaches the client: the loop hands back one answer, and
the relay sends it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from fd2.control.secrets import Secret
from fd2.module import Timeouts
from fd2.serving.errors import NotFound
from fd2_inference.deployments.attempt import Tried, attempt, request_body
from fd2_inference.deployments.budget import RetryBudget
from fd2_inference.deployments.client import Client
from fd2_inference.deployments.config import AliasSpec, DeploymentsSpec
from fd2_inference.deployments.router_metrics import RouterMetrics
from fd2_inference.deployments.strategies import Strategy, make_strategy
from fd2_inference.deployments.target import Target

CHAT_PATH = "/chat/completions"


class Deployment:
    __slots__ = ("name", "spec", "strategy", "targets")

    def __init__(self, name: str, spec: AliasSpec, targets: tuple[Target, ...]) -> None:
        self.name = name
        self.spec = spec
        self.targets = targets
        self.strategy: Strategy = make_strategy(spec.strategy, targets)


class Outcome:
    """What the loop hands back: the winning attempt (or the last failure) and its counts."""

    __slots__ = ("attempts", "fallbacks", "hedges", "tried")

    def __init__(self, tried: Tried, attempts: int, fallbacks: int, hedges: int) -> None:
        self.tried = tried
        self.attempts = attempts
        self.fallbacks = fallbacks
        self.hedges = hedges

    @property
    def served_by(self) -> str:
        return self.tried.target.label


class Router:
    def __init__(
        self,
        spec: DeploymentsSpec,
        keys: Mapping[tuple[str, int], Secret | None],
        base: Timeouts,
        client: Client,
        metrics: RouterMetrics,
    ) -> None:
        self._client = client
        self.metrics = metrics
        self.budget = RetryBudget(spec.routing.retry_budget)
        self.deployments: dict[str, Deployment] = {}
        secrets: list[str] = []
        for alias, entry in spec.deployments.items():
            targets = []
            for index, target_spec in enumerate(entry.targets):
                key = keys.get((alias, index))
                revealed = key.reveal() if key is not None else None
                if revealed:
                    secrets.append(revealed)
                targets.append(
                    Target(alias, index, target_spec, revealed, base, spec.routing.breaker)
                )
            self.deployments[alias] = Deployment(alias, entry, tuple(targets))
        self.secrets = tuple(secrets)
        self.requests = 0

    def aliases(self) -> tuple[str, ...]:
        return tuple(self.deployments)

    def deployment(self, alias: str) -> Deployment:
        found = self.deployments.get(alias)
        if found is None:
            raise NotFound(
                f"The model {alias!r} does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return found

    async def run(
        self,
        alias: str,
        path: str,
        payload: Mapping[str, Any],
        request_id: str,
        *,
        stream: bool,
        original: bytes | None = None,
    ) -> Outcome:
        """The request's answer: a good one, or the last failure once retries are spent.
        `original`: the client's body as it came, when the payload is it unchanged."""
        deployment = self.deployment(alias)
        return await _Run(self, deployment, path, payload, request_id, stream, original).go()

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "deployments": {
                name: {
                    "strategy": d.spec.strategy,
                    "fallbacks": d.spec.fallbacks,
                    "hedge": d.spec.hedge is not None,
                    "targets": [t.describe(now) for t in d.targets],
                }
                for name, d in self.deployments.items()
            },
            "routing": {
                "requests": self.requests,
                "retry_budget": {
                    "balance": round(self.budget.balance, 2),
                    "spent": self.budget.spent,
                    "denied": self.budget.denied,
                },
                **self.metrics.totals(),
            },
        }


class _Run:
    """The state of one request's attempts."""

    def __init__(
        self,
        router: Router,
        first: Deployment,
        path: str,
        payload: Mapping[str, Any],
        request_id: str,
        stream: bool,
        original: bytes | None,
    ) -> None:
        self.router = router
        self.first = first
        self.path = path
        self.payload = payload
        self.request_id = request_id
        self.stream = stream
        self.chain = [first.name, *first.spec.fallbacks]
        self.position = 0
        self.tried: set[int] = set()
        self.running: dict[asyncio.Task[Tried], Target] = {}
        self.attempts = 0
        self.fallbacks = 0
        self.hedges = 0
        self.last_alias = first.name
        self.bodies: dict[str, bytes] = {}
        """The body per upstream model name; the client's own bytes when nothing changed."""
        if original is not None and isinstance(payload.get("model"), str):
            self.bodies[payload["model"]] = original

    async def go(self) -> Outcome:
        router = self.router
        router.requests += 1
        router.budget.deposit()
        spec = self.first.spec
        hedge = spec.hedge
        target = self._next(time.monotonic(), panic=True)
        if target is None:
            raise NotFound(
                f"The model {self.first.name!r} is not served on this endpoint.",
                code="model_not_found",
            )
        if hedge is None:
            return await self._one_at_a_time(target)
        self._launch(target)
        last: Tried | None = None
        winner: Tried | None = None
        hedging = hedge is not None
        launched_at = time.monotonic()
        try:
            while self.running:
                timeout = None
                if hedging and hedge is not None and len(self.running) == 1:
                    delay = self._hedge_delay(target, hedge.delay_ms, hedge.min_delay_ms)
                    if delay is None or self.hedges >= hedge.max_hedges:
                        hedging = False
                    else:
                        timeout = max(0.0, launched_at + delay - time.monotonic())
                done, _ = await asyncio.wait(
                    self.running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    hedged = self._next(time.monotonic(), panic=False)
                    if (
                        hedged is None
                        or self.attempts >= spec.max_attempts
                        or not router.budget.withdraw()
                    ):
                        hedging = False
                        continue
                    self.hedges += 1
                    router.metrics.hedged(self.first.name)
                    self._launch(hedged)
                    launched_at = time.monotonic()
                    continue
                for task in done:
                    self.running.pop(task)
                    result = task.result()
                    self._observe(result)
                    if result.cause is None and winner is None:
                        winner = result
                    elif result.cause is None:
                        result.close()
                    else:
                        last = result
                if winner is not None:
                    if self.hedges and winner.target is not target:
                        router.metrics.hedge_won(self.first.name)
                    return self._outcome(winner)
                if self.running:
                    continue
                assert last is not None
                following = self._after_failure(last)
                if following is None:
                    break
                target = following
                self._launch(target)
                launched_at = time.monotonic()
            assert last is not None
            return self._outcome(last)
        finally:
            await self._cancel_running()

    async def _one_at_a_time(self, target: Target) -> Outcome:
        """Without hedging: each attempt awaited in the request's own task (no task, no wait)."""
        while True:
            result = await self._attempt(target)
            self._observe(result)
            if result.cause is None:
                return self._outcome(result)
            following = self._after_failure(result)
            if following is None:
                return self._outcome(result)
            target = following

    def _after_failure(self, last: Tried) -> Target | None:
        """The next target after `last` failed, or None when the request stops here."""
        spec = self.first.spec
        cause = last.cause
        if cause is None or cause not in spec.retry_on or self.attempts >= spec.max_attempts:
            return None
        if cause in ("context_length", "content_filter"):
            source = self.router.deployments[last.target.alias].spec
            jump = (
                source.context_fallback
                if cause == "context_length"
                else source.content_filter_fallback
            )
            if jump is None:
                return None
            self.chain = [jump, *self.router.deployments[jump].spec.fallbacks]
            self.position = 0
        following = self._next(time.monotonic(), panic=False)
        if following is None or not self.router.budget.withdraw():
            return None
        return following

    def _next(self, now: float, *, panic: bool) -> Target | None:
        deployments = self.router.deployments
        while self.position < len(self.chain):
            deployment = deployments[self.chain[self.position]]
            candidates = [
                t
                for t in deployment.targets
                if id(t) not in self.tried and t.eligible(now) and self._serves(t)
            ]
            while candidates:
                choice = deployment.strategy.pick(candidates, now)
                if choice.breaker.allows(now):
                    return choice
                candidates.remove(choice)
            self.position += 1
        if not panic:
            return None
        # Nothing eligible anywhere at the request's start (every breaker open, every target
        # cooling or full): send it anyway rather than refuse (Envoy's panic routing).
        self.position = 0
        pool = [t for t in self.first.targets if id(t) not in self.tried and self._serves(t)]
        if not pool:
            return None
        return self.first.strategy.pick(pool, now)

    def _serves(self, target: Target) -> bool:
        """A provider's target serves chat completions only (its seam translates those)."""
        return target.provider is None or self.path == CHAT_PATH

    def _launch(self, target: Target) -> None:
        task = asyncio.get_running_loop().create_task(self._attempt(target))
        self.running[task] = target

    def _attempt(self, target: Target) -> Coroutine[Any, Any, Tried]:
        """One attempt on `target`, counted (not yet started)."""
        self.attempts += 1
        self.tried.add(id(target))
        if target.alias != self.last_alias:
            self.fallbacks += 1
            self.router.metrics.fell_back(self.first.name, target.alias)
            self.last_alias = target.alias
        body = None
        if target.provider is None:  # a provider's target has its call built by the provider
            body = self.bodies.get(target.model)
            if body is None:
                body = self.bodies[target.model] = request_body(self.payload, target.model)
        self.router.metrics.attempted(target)
        return attempt(
            self.router._client,
            target,
            self.path,
            body,
            self.payload,
            self.request_id,
            stream=self.stream,
        )

    def _observe(self, result: Tried) -> None:
        target, cause = result.target, result.cause
        if cause is None and result.error is not None:
            return  # refused before it was sent (a parameter the provider cannot honour)
        if cause is None:
            target.breaker.success()
            target.answered(result.ttfb_s)
        else:
            target.failures += 1
            if cause == "429":
                target.cool_until = time.monotonic() + (result.retry_after or 0.0)
            elif cause in ("connect", "timeout", "5xx"):
                if result.retry_after:
                    target.cool_until = time.monotonic() + result.retry_after
                target.breaker.failure()
            else:
                target.breaker.success()  # the target answered; the request was the problem
        self.router.metrics.finished(target, cause)

    def _hedge_delay(self, target: Target, fixed_ms: float | None, floor_ms: float) -> float | None:
        if fixed_ms is not None:
            return max(fixed_ms, floor_ms) / 1000
        p95 = target.p95_s()
        return None if p95 is None else max(p95, floor_ms / 1000)

    def _outcome(self, tried: Tried) -> Outcome:
        return Outcome(tried, self.attempts, self.fallbacks, self.hedges)

    async def _cancel_running(self) -> None:
        """Losers and leftovers: cancelled, and a stream that did open is closed."""
        if not self.running:
            return
        running = dict(self.running)
        self.running.clear()
        for task in running:
            task.cancel()
        results = await asyncio.gather(*running, return_exceptions=True)
        for result, target in zip(results, running.values(), strict=True):
            if isinstance(result, Tried):
                result.close()
            self.router.metrics.finished(target, "cancelled")
