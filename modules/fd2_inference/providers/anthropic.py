"""Anthropic's Messages API behind OpenAI's chat completions (the `anthropic` provider).

Calls `POST /v1/messages` below the module's base URL (Anthropic's is https://api.anthropic.com)
with `x-api-key` and `anthropic-version: 2023-06-01`. The request translation is in
anthropic_request.py, the answer's in anthropic_answer.py, the stream's in anthropic_stream.py,
the errors' in anthropic_errors.py. Anthropic has no embeddings API: `/v1/embeddings` is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

import orjson

from fd2.serving.errors import ConfigError, UpstreamError
from fd2_inference.providers.anthropic_answer import chat_completion
from fd2_inference.providers.anthropic_errors import failure
from fd2_inference.providers.anthropic_request import PROVIDER, messages_body
from fd2_inference.providers.anthropic_stream import AnthropicStream
from fd2_inference.providers.base import (
    Framing,
    ParamPolicy,
    ProviderCall,
    ProviderFailure,
    ProviderSettings,
    StreamTranslator,
    UnsupportedParameter,
)

API_VERSION: Final = "2023-06-01"
MESSAGES_PATH: Final = "/v1/messages"
DEFAULT_MAX_TOKENS: Final = 4096
"""`max_tokens` sent when the request names none and the module sets no `max_tokens` default
(Anthropic requires one); `provider_options.default_max_tokens` changes it."""


class AnthropicProvider:
    """The Provider (providers/base.py) for Anthropic's Messages API."""

    name: ClassVar[str] = PROVIDER
    framing: ClassVar[Framing] = "sse"
    passthrough: ClassVar[bool] = False

    __slots__ = ("_default_max_tokens", "_headers", "_policy")

    def __init__(self, settings: ProviderSettings) -> None:
        headers = [
            ("content-type", "application/json"),
            ("anthropic-version", settings.api_version or API_VERSION),
        ]
        if settings.api_key:
            headers.append(("x-api-key", settings.api_key))
        self._headers = tuple(headers)
        self._default_max_tokens = _default_max_tokens(settings.options)
        self._policy: ParamPolicy = settings.unsupported_params

    def __repr__(self) -> str:  # never the key
        return f"AnthropicProvider(policy={self._policy!r})"

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        payload, dropped = messages_body(
            body, default_max_tokens=self._default_max_tokens, policy=self._policy, stream=stream
        )
        headers = (*self._headers, ("accept", "text/event-stream")) if stream else self._headers
        body_bytes = orjson.dumps(payload)
        return ProviderCall("POST", MESSAGES_PATH, headers, body_bytes, stream, dropped)

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamError("The Anthropic API answered with invalid JSON.") from None
        if not isinstance(message, dict) or message.get("type") != "message":
            raise UpstreamError("The Anthropic API answered with something other than a message.")
        return chat_completion(message, model)

    def chat_stream(self, *, model: str, include_usage: bool) -> StreamTranslator:
        return AnthropicStream(model=model, include_usage=include_usage)

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        raise UnsupportedParameter("input", PROVIDER, ": Anthropic has no embeddings API")

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        raise UnsupportedParameter("input", PROVIDER, ": Anthropic has no embeddings API")

    def failure(self, status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
        return failure(status, headers, payload)


def _default_max_tokens(options: Mapping[str, Any]) -> int:
    value = options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # placeholders resolve to strings
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError("provider_options.default_max_tokens must be a positive integer")
    return value
