"""Google Gemini (Generative Language API v1beta) behind OpenAI's inference API.

Chat goes to `POST /v1beta/models/{model}:generateContent` (streamed:
`:streamGenerateContent?alt=sse`), embeddings to `:embedContent` (one input) or
`:batchEmbedContents` (a list), all below the base URL `https://generativelanguage.googleapis.com`,
with the key in `x-goog-api-key` (never in the URL, where access logs would keep it).
The request and answer mappings are in `gemini_request`, `gemini_answer` and `gemini_stream`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Final

import orjson

from fd2.serving.errors import BadRequest, ConfigError
from fd2_inference.providers import gemini_answer
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
from fd2_inference.providers.gemini_request import chat_request, model_path
from fd2_inference.providers.gemini_stream import GeminiStream

_EMBED_KEYS: Final = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_MESSAGE_LIMIT: Final = 2000
_RETRY_DELAY: Final = re.compile(r"(\d+(?:\.\d+)?)s")


class GeminiProvider:
    """Gemini's translation. Settings: `api_key`, `unsupported_params`, and in
    `provider_options` `embedding_task_type` (Gemini's `taskType` for embeddings, e.g.
    RETRIEVAL_DOCUMENT; none by default) and `skip_thought_signature_validation` (false by
    default: true lets Gemini 3 continue conversations whose tool calls another model made) and
    `json_schema` (`subset`, the default: schemas converted to Gemini's `Schema`, refused where
    it cannot express them; `native`: sent as JSON Schema, for Gemini 2.5 and later)."""

    name: ClassVar[str] = "gemini"
    framing: ClassVar[Framing] = "sse"
    passthrough: ClassVar[bool] = False

    __slots__ = ("_api_key", "_native_schemas", "_policy", "_sign_foreign", "_task_type")

    def __init__(self, settings: ProviderSettings) -> None:
        self._api_key = settings.api_key or None
        self._policy: ParamPolicy = settings.unsupported_params
        task_type = settings.options.get("embedding_task_type")
        if task_type is not None and not isinstance(task_type, str):
            raise ConfigError("provider_options.embedding_task_type must be a string")
        self._task_type: str | None = task_type
        sign_foreign = settings.options.get("skip_thought_signature_validation", False)
        if not isinstance(sign_foreign, bool):
            raise ConfigError(
                "provider_options.skip_thought_signature_validation must be a boolean"
            )
        self._sign_foreign = sign_foreign
        schemas = settings.options.get("json_schema", "subset")
        if schemas not in ("subset", "native"):
            raise ConfigError('provider_options.json_schema must be "subset" or "native"')
        self._native_schemas = schemas == "native"

    def __repr__(self) -> str:
        return f"GeminiProvider(policy={self._policy!r})"

    def _headers(self) -> tuple[tuple[str, str], ...]:
        headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
        if self._api_key is not None:
            headers += (("x-goog-api-key", self._api_key),)
        return headers

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        model = model_path(body)
        policy = UnsupportedParams(self.name, self._policy)
        request = chat_request(
            body,
            policy,
            sign_foreign_calls=self._sign_foreign,
            native_schemas=self._native_schemas,
        )
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        return ProviderCall(
            method="POST",
            path=f"/v1beta/models/{model}{method}",
            headers=self._headers(),
            body=orjson.dumps(request),
            stream=stream,
            dropped=tuple(policy.dropped),
        )

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return gemini_answer.chat_completion(gemini_answer.decode(payload), model)

    def chat_stream(self, *, model: str, include_usage: bool) -> StreamTranslator:
        return GeminiStream(
            model=model, include_usage=include_usage, failure_of=self._google_failure
        )

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        model = model_path(body)
        policy = UnsupportedParams(self.name, self._policy)
        for key, value in body.items():
            if key not in _EMBED_KEYS and value is not None:
                policy(key, "")
        # Answers are floats; the relay encodes them when the client asked for base64.
        texts = body.get("input")
        one = isinstance(texts, str)
        if one:
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            policy("input", ": Gemini embeds text only (not token arrays)")
            raise BadRequest("'input' must be a string or a list of strings.", param="input")
        requests = [self._embed_request(model, text, body) for text in texts]
        path = (
            f"/v1beta/models/{model}:embedContent"
            if one
            else f"/v1beta/models/{model}:batchEmbedContents"
        )
        request: Any = requests[0] if one else {"requests": requests}
        return ProviderCall(
            method="POST",
            path=path,
            headers=self._headers(),
            body=orjson.dumps(request),
            dropped=tuple(policy.dropped),
        )

    def _embed_request(self, model: str, text: str, body: Mapping[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": f"models/{model}",
            "content": {"parts": [{"text": text}]},
        }
        if body.get("dimensions") is not None:
            request["outputDimensionality"] = body["dimensions"]
        if self._task_type is not None:
            request["taskType"] = self._task_type
        return request

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return gemini_answer.embeddings(gemini_answer.decode(payload), model)

    def failure(self, status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        return self._google_failure(status, error if isinstance(error, Mapping) else {}, headers)

    def _google_failure(
        self, status: int, error: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> ProviderFailure:
        """A `google.rpc.Status`-shaped error object (`code`, `message`, `status`, `details`)
        in the shared status mapping; UNAVAILABLE ("the model is overloaded") is a 503."""
        reasons = {
            detail.get("reason")
            for detail in error.get("details") or ()
            if isinstance(detail, Mapping)
        }
        if "API_KEY_INVALID" in reasons or error.get("status") == "UNAUTHENTICATED":
            status = 401  # Gemini answers a wrong key with 400 INVALID_ARGUMENT
        message = error.get("message")
        text = ""
        if isinstance(message, str) and message:
            text = f"Gemini: {self._without_key(message)[:_MESSAGE_LIMIT]}"
        failure = standard_failure(
            status,
            text or f"Gemini answered HTTP {status}.",
            headers or {},
            overloaded=status == 503 or error.get("status") == "UNAVAILABLE",
        )
        retry = _retry_after(error) if failure.status == 429 else None
        if retry is None or any(name == "retry-after" for name, _ in failure.headers):
            return failure
        return replace(failure, headers=(*failure.headers, ("retry-after", retry)))

    def _without_key(self, message: str) -> str:
        return message.replace(self._api_key, "***") if self._api_key else message


def _retry_after(error: Mapping[str, Any]) -> str | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "37s"`), rounded up."""
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping) and isinstance(detail.get("retryDelay"), str):
            found = _RETRY_DELAY.fullmatch(detail["retryDelay"])
            if found:
                return str(math.ceil(float(found.group(1))))
    return None
