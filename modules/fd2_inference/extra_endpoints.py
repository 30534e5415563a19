"""Endpoints other parts of fd2 add to every inference module (see `fd2_inference.extras`).

One line per factory; the module's code does not change when one is added.
"""

from __future__ import annotations

from fd2_inference.extras import EndpointFactory
from fd2_inference.inbound import messages
from fd2_inference.responses import endpoint as responses

EXTRA_ENDPOINTS: tuple[EndpointFactory, ...] = (
    messages.endpoints,  # Anthropic's Messages API at /v1/messages
    responses.endpoints,  # OpenAI's Responses API at /v1/responses
)
