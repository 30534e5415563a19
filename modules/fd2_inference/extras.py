"""How other endpoints join the inference module without changing its code.

A factory listed in `fd2_inference.extra_endpoints.EXTRA_ENDPOINTS` is called once when a module
is set up, with the parts of the module an endpoint may use, and returns the endpoints it adds
(Anthropic's inbound `/v1/messages`, later others). Their handlers are served and metered like
the module's own. Not for modules served through an APISIX route (OpenAI chat only there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from fd2.metering import Meter
from fd2.module import ErrorRenderer, Handler
from fd2_inference.providers.base import ChatService
from fd2_inference.transforms import Defaults


# msgspec Structs, not frozen dataclasses: a frozen dataclass sets each field through
# `object.__setattr__`, and every route of a build makes these (~5% of a 10k-route build).
class ModuleParts(msgspec.Struct, frozen=True):
    chat: ChatService
    """The module's chat path over its provider (reports usage on the request itself)."""
    provider: str
    """The module's provider name ("openai" when none is configured)."""
    defaults: Defaults
    """The manifest's defaults (model, max_tokens, ...), applied by `chat` already."""
    logger: logging.Logger
    project: str
    module: str
    config: Mapping[str, Any] = {}
    """The module's resolved config (an endpoint's own settings live there, e.g. `prompts`)."""
    redis: Any = None
    """The worker's shared Redis client (`ModuleContext.redis`), None without --redis-url."""
    upstream: Any = None
    """The module's `fd2_inference.upstream.Upstream` when its upstream is OpenAI-compatible
    (relayed byte for byte, every endpoint served), else None."""


class ExtraEndpoint(msgspec.Struct, frozen=True):
    path: str
    """Below the module, e.g. "/v1/messages"."""
    method: str
    handler: Handler
    meter: Meter | None = None
    """How the endpoint's requests are estimated (limits, metering); None: not metered."""
    error_renderer: ErrorRenderer | None = None
    """Errors on this endpoint in its own API's shape, the route's refusals included (401, 429);
    None: OpenAI's."""


EndpointFactory = Callable[[ModuleParts], Sequence[ExtraEndpoint]]
