"""Cohere v2 behind OpenAI's inference API.

Chat goes to `POST /v2/chat` (`"stream": true` for an SSE stream), embeddings to `POST /v2/embed`,
below the base URL `https://api.cohere.com`, with `Authorization: Bearer <key>`. The mappings are
in `cohere_request`, `cohere_answer` and `cohere_stream`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import orjson

from fd2.control.secrets import Secret
from fd2.serving.errors import BadRequest
from fd2_inference.providers import cohere_answer
from fd2_inference.providers.base import (
    Framing,
    ParamPolicy,
    ProviderCall,
    ProviderFailure,
    StreamTranslator,
    UnsupportedParameter,
)
from fd2_inference.providers.cohere_request import chat_request
from fd2_inference.providers.cohere_stream import CohereStream

_log = logging.getLogger("fd2.inference.providers")

_EMBED_KEYS: Final = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_MESSAGE_LIMIT: Final = 2000
# Cohere's documented statuses: (status, OpenAI type, code). 498 is Cohere's "invalid token";
# 402 (no credit left) is what OpenAI answers as 429 insufficient_quota.
_BY_STATUS: Final = {
    400: (400, "invalid_request_error", "invalid_request"),
    401: (401, "invalid_request_error", "invalid_api_key"),
    402: (429, "insufficient_quota", "insufficient_quota"),
    403: (403, "invalid_request_error", "permission_denied"),
    404: (404, "invalid_request_error", "not_found"),
    413: (413, "invalid_request_error", "request_too_large"),
    422: (400, "invalid_request_error", "invalid_request"),
    429: (429, "requests", "rate_limit_exceeded"),
    498: (401, "invalid_request_error", "invalid_api_key"),
    503: (503, "server_error", "service_unavailable"),
}
_UPSTREAM: Final = (502, "upstream_error", "bad_gateway")


class CohereProvider:
    """Cohere v2's translation; `api_key` is the module's resolved secret, `input_type` what
    embeddings are for (Cohere's v3+ embedding models require one)."""

    name: ClassVar[str] = "cohere"
    framing: ClassVar[Framing] = "sse"
    passthrough: ClassVar[bool] = False

    __slots__ = ("_api_key", "_input_type", "_policy")

    def __init__(
        self,
        *,
        api_key: Secret | None,
        policy: ParamPolicy = "refuse",
        input_type: str = "search_document",
    ) -> None:
        self._api_key = api_key
        self._policy = policy
        self._input_type = input_type

    def __repr__(self) -> str:
        return f"CohereProvider(policy={self._policy!r})"

    def _unsupported(self, param: str, why: str) -> None:
        if self._policy == "refuse":
            raise UnsupportedParameter(param, self.name, why)
        _log.info("provider %s: dropped %r%s", self.name, param, why)

    def _headers(self, *, stream: bool = False) -> tuple[tuple[str, str], ...]:
        headers: tuple[tuple[str, str], ...] = (
            ("content-type", "application/json"),
            ("accept", "text/event-stream" if stream else "application/json"),
        )
        if self._api_key is not None:
            headers += (("authorization", f"Bearer {self._api_key.reveal()}"),)
        return headers

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        request = chat_request(body, self._unsupported, stream=stream)
        return ProviderCall(
            method="POST",
            path="/v2/chat",
            headers=self._headers(stream=stream),
            body=orjson.dumps(request),
            stream=stream,
        )

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return cohere_answer.chat_completion(cohere_answer.decode(payload), model)

    def chat_stream(self, *, model: str, include_usage: bool) -> StreamTranslator:
        return CohereStream(model=model, include_usage=include_usage, created=int(time.time()))

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        for key, value in body.items():
            if key not in _EMBED_KEYS and value is not None:
                self._unsupported(key, "")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' must name a Cohere embedding model.", param="model")
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            self._unsupported("input", ": Cohere embeds text only (not token arrays)")
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
            method="POST", path="/v2/embed", headers=self._headers(), body=orjson.dumps(request)
        )

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return cohere_answer.embeddings(cohere_answer.decode(payload), model)

    def failure(self, status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
        mapped, kind, code = _BY_STATUS.get(status, _UPSTREAM if status >= 500 else _BY_STATUS[400])
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(message, str) and message:
            text = f"Cohere: {self._without_key(message)[:_MESSAGE_LIMIT]}"
        else:
            text = f"Cohere answered HTTP {status}."
        passed = tuple(
            (name.lower(), value)
            for name, value in headers.items()
            if name.lower() == "retry-after" or name.lower().startswith("x-ratelimit-")
        )
        return ProviderFailure(status=mapped, type=kind, code=code, message=text, headers=passed)

    def _without_key(self, message: str) -> str:
        if self._api_key is None or not self._api_key.reveal():
            return message
        return message.replace(self._api_key.reveal(), "***")
