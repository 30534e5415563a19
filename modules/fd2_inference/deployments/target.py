"""One upstream target of a deployment at run time: where it is, how to call it, and what the
router has observed of it (in flight, latency, usage, breaker, Retry-After cool-down)."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Final

from fd2.module import Timeouts
from fd2_inference.deployments.breaker import Breaker
from fd2_inference.deployments.config import BreakerSpec, TargetSpec
from fd2_inference.providers.base import Provider, ProviderSettings
from fd2_inference.providers.registry import DEFAULT_PROVIDER, build_provider

_EWMA_WEIGHT: Final = 0.2
_SAMPLES: Final = 128
_MINUTE: Final = 60.0


class Target:
    __slots__ = (
        "_latencies",
        "_requests",
        "_tokens",
        "alias",
        "api_key",
        "attempts",
        "base_url",
        "breaker",
        "cool_until",
        "ewma_s",
        "failures",
        "headers",
        "in_flight",
        "label",
        "max_in_flight",
        "model",
        "priority",
        "provider",
        "rpm",
        "timeouts",
        "tpm",
        "weight",
    )

    def __init__(
        self,
        alias: str,
        index: int,
        spec: TargetSpec,
        api_key: str | None,
        base: Timeouts,
        breaker: BreakerSpec,
    ) -> None:
        self.alias = alias
        self.label = spec.name or f"{alias}#{index}"
        self.base_url = spec.base_url.rstrip("/")
        self.model = spec.model or alias
        self.api_key = api_key
        self.weight = spec.weight
        self.priority = spec.priority
        self.rpm = spec.rpm
        self.tpm = spec.tpm
        self.max_in_flight = spec.max_in_flight
        own = spec.timeouts
        self.timeouts = Timeouts(
            connect_s=own.connect_s or base.connect_s,
            read_s=own.read_s or base.read_s,
            total_s=own.total_s or base.total_s,
        )
        self.breaker = Breaker(breaker)
        name = spec.provider.strip().lower()
        self.provider: Provider | None = None
        """None: OpenAI-compatible, relayed byte for byte; else the provider seam's."""
        if name != DEFAULT_PROVIDER:
            self.provider = build_provider(
                ProviderSettings(
                    name=name,
                    base_url=self.base_url,
                    api_key=api_key,
                    api_version=spec.api_version,
                    deployment=spec.deployment,
                    region=spec.region,
                    model=self.model,
                    options=spec.provider_options,
                )
            )
        # Only these go upstream, never the client's own headers (its credential is fd2's).
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.headers = {
            stream: {
                **auth,
                "content-type": "application/json",
                "accept": "text/event-stream" if stream else "application/json",
            }
            for stream in (False, True)
        }
        self.in_flight = 0
        self.ewma_s: float | None = None
        self.cool_until = 0.0
        """Until when the target asked not to be sent anything (its Retry-After)."""
        self.attempts = 0
        self.failures = 0
        self._latencies: deque[float] = deque(maxlen=_SAMPLES)
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()

    def eligible(self, now: float) -> bool:
        """Whether the target may take a request now (without taking a probe slot)."""
        if now < self.cool_until or not self.breaker.would_allow(now):
            return False
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            return False
        if self.rpm is not None and self._recent_requests(now) >= self.rpm:
            return False
        return self.tpm is None or self.tokens_used(now) < self.tpm

    def started(self, now: float) -> None:
        self.in_flight += 1
        self.attempts += 1
        if self.rpm is not None:
            self._requests.append(now)

    def ended(self) -> None:
        self.in_flight -= 1

    def answered(self, ttfb_s: float) -> None:
        """Time to the first byte of a good answer (status line in)."""
        self._latencies.append(ttfb_s)
        previous = self.ewma_s
        self.ewma_s = ttfb_s if previous is None else previous + _EWMA_WEIGHT * (ttfb_s - previous)

    def charge(self, tokens: int, now: float | None = None) -> None:
        if self.tpm is not None and tokens > 0:
            self._tokens.append((time.monotonic() if now is None else now, tokens))

    def headroom(self, now: float) -> float:
        """Tokens left this minute (infinite without a `tpm`)."""
        if self.tpm is None:
            return math.inf
        return self.tpm - self.tokens_used(now)

    def tokens_used(self, now: float) -> int:
        tokens = self._tokens
        while tokens and tokens[0][0] < now - _MINUTE:
            tokens.popleft()
        return sum(count for _, count in tokens)

    def p95_s(self) -> float | None:
        samples = sorted(self._latencies)
        if len(samples) < 10:
            return None
        return samples[min(len(samples) - 1, int(len(samples) * 0.95))]

    def _recent_requests(self, now: float) -> int:
        requests = self._requests
        while requests and requests[0] < now - _MINUTE:
            requests.popleft()
        return len(requests)

    def describe(self, now: float) -> dict[str, object]:
        return {
            "name": self.label,
            "model": self.model,
            "provider": self.provider.name if self.provider is not None else DEFAULT_PROVIDER,
            "weight": self.weight,
            "priority": self.priority,
            "breaker": self.breaker.state,
            "breaker_opened": self.breaker.opened,
            "in_flight": self.in_flight,
            "attempts": self.attempts,
            "failures": self.failures,
            "ttfb_ewma_ms": round(self.ewma_s * 1000, 1) if self.ewma_s is not None else None,
            "cooling_s": round(max(0.0, self.cool_until - now), 1),
        }
