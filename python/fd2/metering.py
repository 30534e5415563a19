"""The metering contract: how the core learns what a request costs without knowing its provider.

A module hands the core one `Meter` per endpoint (`Module.meters()`). Before the call the core
asks it for an estimate — the model, the prompt tokens, the most the answer may add — and after
the call it reads the usage the module reported on the request (`Request.report_usage`). Rate
limits read only this; so will metrics and audit. Provider rules (how a prompt is counted, where
a usage object lives in an answer, what a field is called) stay inside the module.

Each request is estimated at most once: `Request.estimate(meter)` keeps the estimate on the
request, and the module reuses it (e.g. to write a usage chunk the upstream did not send) instead
of counting the prompt again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import msgspec

if TYPE_CHECKING:
    from fd2.serving.request import Request


class Cost(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a request may cost, known before it is sent."""

    model: str | None
    """The model the request will use (after the module's defaults), or None."""
    prompt_tokens: int
    """Tokens of the input, counted as the provider counts them."""
    completion_bound: int
    """The most tokens the answer may add (0 for an endpoint that generates none). Token
    limits reserve `prompt_tokens + completion_bound`."""


class Usage(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a request used, as the module reports it (converted from its provider's shape)."""

    prompt_tokens: int
    """Input tokens, cached ones included (Anthropic's `input_tokens` + cache reads/writes)."""
    completion_tokens: int = 0
    cached_tokens: int = 0
    """The part of `prompt_tokens` served from the provider's prompt cache. Token limits charge
    `prompt_tokens + completion_tokens`."""


class Meter(Protocol):
    """One endpoint's cost model, built by the module when it is set up."""

    async def model(self, request: Request) -> str | None:
        """The model the request will use: what authorisation checks. Cheap (no counting)."""

    async def estimate(self, request: Request) -> Cost:
        """The request's cost before it is sent. Call it through `Request.estimate(meter)`,
        which makes it once per request."""
