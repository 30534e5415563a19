"""Cohere v2 behind OpenAI's inference API.

Chat goes to `POST /v2/chat` (`"stream": true` for an SSE stream), embeddings to `POST /v2/embed`,
below the base URL `https://api.cohere.com`, with `Authorization: Bearer <key>`. The mappings are
in `cohere_request`, `cohere_answer` and `cohere_stream`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import orjson

from fd2.serving.errors import BadRequest, ConfigError
from fd2_inference.providers import cohere_answer
from fd2_inference.providers.base import (
    Framing,
    ParamPolicy,
    ProviderCall,
    ProviderFailure,
    ProviderSettings,
    StreamTranslator,
    UnsupportedParams,
    standard_failure,
)
from fd2_inference.providers.cohere_request import chat_request
from fd2_inference.providers.cohere_stream import CohereStream

_EMBED_KEYS: Final = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_INPUT_TYPES: Final = frozenset(
    {"search_document", "search_query", "classification", "clustering", "image"}
)
_MESSAGE_LIMIT: Final = 2000
_INVALID_TOKEN: Final = 498
"""Cohere's own status for a key it does not accept: a 401 in OpenAI's terms."""


class CohereProvider:
    """Cohere v2's translation. Settings: `api_key`, `unsupported_params`, and in
    `provider_options` `input_type`: what embeddings are for (Cohere's v3+ embedding models
    require one; `search_document` unless set)."""

    name: ClassVar[str] = "cohere"
    framing: ClassVar[Framing] = "sse"
    passthrough: ClassVar[bool] = False

    __slots__ = ("_api_key", "_input_type", "_policy")

    def __init__(self, settings: ProviderSettings) -> None:
        self._api_key = settings.api_key or None
        self._policy: ParamPolicy = settings.unsupported_params
        input_type = settings.options.get("input_type", "search_document")
        if input_type not in _INPUT_TYPES:
            raise ConfigError(
                "provider_options.input_type must be one of " + ", ".join(sorted(_INPUT_TYPES))
            )
        self._input_type: str = input_type

    def __repr__(self) -> str:
        return f"CohereProvider(policy={self._policy!r})"

    def _headers(self, *, stream: bool = False) -> tuple[tuple[str, str], ...]:
        headers: tuple[tuple[str, str], ...] = (
            ("content-type", "application/json"),
            ("accept", "text/event-stream" if stream else "application/json"),
        )
        if self._api_key is not None:
            headers += (("authorization", f"Bearer {self._api_key}"),)
        return headers

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        policy = UnsupportedParams(self.name, self._policy)
        request = chat_request(body, policy, stream=stream)
        return ProviderCall(
            method="POST",
            path="/v2/chat",
            headers=self._headers(stream=stream),
            body=orjson.dumps(request),
            stream=stream,
            dropped=tuple(policy.dropped),
        )

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return cohere_answer.chat_completion(cohere_answer.decode(payload), model)

    def chat_stream(self, *, model: str, include_usage: bool) -> StreamTranslator:
        return CohereStream(model=model, include_usage=include_usage, created=int(time.time()))

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        policy = UnsupportedParams(self.name, self._policy)
        for key, value in body.items():
            if key not in _EMBED_KEYS and value is not None:
                policy(key, "")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' must name a Cohere embedding model.", param="model")
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            policy("input", ": Cohere embeds text only (not token arrays)")
            raise BadRequest("'input' must be a string or a list of strings.", param="input")
        request: dict[str, Any] = {
            "model": model,
            "texts": texts,
            "input_type": self._input_type,
            "embedding_types": ["float"],
            # OpenAI refuses an input longer than the model takes; Cohere would cut it short.
            "truncate": "NONE",
        }
        if body.get("dimensions") is not None:
            request["output_dimension"] = body["dimensions"]
        # Answers are floats; the relay encodes them when the client asked for base64.
        return ProviderCall(
            method="POST",
            path="/v2/embed",
            headers=self._headers(),
            body=orjson.dumps(request),
            dropped=tuple(policy.dropped),
        )

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return cohere_answer.embeddings(cohere_answer.decode(payload), model)

    def failure(self, status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
        """Cohere's `{"id", "message"}` error in the shared status mapping (503 is Cohere's
        overloaded; 498, its invalid token, is a 401)."""
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        text = f"Cohere answered HTTP {status}."
        if isinstance(message, str) and message:
            text = f"Cohere: {self._without_key(message)[:_MESSAGE_LIMIT]}"
        status = 401 if status == _INVALID_TOKEN else status
        return standard_failure(status, text, headers, overloaded=status == 503)

    def _without_key(self, message: str) -> str:
        return message.replace(self._api_key, "***") if self._api_key else message
