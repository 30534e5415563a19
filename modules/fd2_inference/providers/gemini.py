"""Google Gemini (Generative Language API v1beta) behind OpenAI's inference API.

Chat goes to `POST /v1beta/models/{model}:generateContent` (streamed:
`:streamGenerateContent?alt=sse`), embeddings to `:embedContent` (one input) or
`:batchEmbedContents` (a list), all below the base URL `https://generativelanguage.googleapis.com`,
with the key in `x-goog-api-key` (never in the URL, where access logs would keep it).
The request and answer mappings are in `gemini_request`, `gemini_answer` and `gemini_stream`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import orjson

from fd2.control.secrets import Secret
from fd2.serving.errors import BadRequest
from fd2_inference.providers import gemini_answer
from fd2_inference.providers.base import (
    Framing,
    ParamPolicy,
    ProviderCall,
    ProviderFailure,
    StreamTranslator,
    UnsupportedParameter,
)
from fd2_inference.providers.gemini_request import chat_request, model_path
from fd2_inference.providers.gemini_stream import GeminiStream

_log = logging.getLogger("fd2.inference.providers")

_EMBED_KEYS: Final = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_MESSAGE_LIMIT: Final = 2000
# Google's canonical error statuses, by HTTP status first: (status, OpenAI type, code).
_BY_STATUS: Final = {
    400: (400, "invalid_request_error", "invalid_request"),
    401: (401, "invalid_request_error", "invalid_api_key"),
    403: (403, "invalid_request_error", "permission_denied"),
    404: (404, "invalid_request_error", "not_found"),
    413: (413, "invalid_request_error", "request_too_large"),
    429: (429, "requests", "rate_limit_exceeded"),
    503: (503, "server_error", "service_unavailable"),
}
_UPSTREAM: Final = (502, "upstream_error", "bad_gateway")
_RETRY_DELAY: Final = re.compile(r"(\d+(?:\.\d+)?)s")


class GeminiProvider:
    """Gemini's translation; `api_key` is the module's resolved secret."""

    name: ClassVar[str] = "gemini"
    framing: ClassVar[Framing] = "sse"
    passthrough: ClassVar[bool] = False

    __slots__ = ("_api_key", "_policy", "_task_type")

    def __init__(
        self,
        *,
        api_key: Secret | None,
        policy: ParamPolicy = "refuse",
        embedding_task_type: str | None = None,
    ) -> None:
        self._api_key = api_key
        self._policy = policy
        self._task_type = embedding_task_type

    def __repr__(self) -> str:
        return f"GeminiProvider(policy={self._policy!r})"

    def _unsupported(self, param: str, why: str) -> None:
        if self._policy == "refuse":
            raise UnsupportedParameter(param, self.name, why)
        _log.info("provider %s: dropped %r%s", self.name, param, why)

    def _headers(self) -> tuple[tuple[str, str], ...]:
        headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
        if self._api_key is not None:
            headers += (("x-goog-api-key", self._api_key.reveal()),)
        return headers

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        model = model_path(body)
        request = chat_request(body, self._unsupported)
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        return ProviderCall(
            method="POST",
            path=f"/v1beta/models/{model}{method}",
            headers=self._headers(),
            body=orjson.dumps(request),
            stream=stream,
        )

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return gemini_answer.chat_completion(gemini_answer.decode(payload), model)

    def chat_stream(self, *, model: str, include_usage: bool) -> StreamTranslator:
        return GeminiStream(
            model=model, include_usage=include_usage, failure_of=self._google_failure
        )

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        model = model_path(body)
        for key, value in body.items():
            if key not in _EMBED_KEYS and value is not None:
                self._unsupported(key, "")
        # Answers are floats; the relay encodes them when the client asked for base64.
        texts = body.get("input")
        one = isinstance(texts, str)
        if one:
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            self._unsupported("input", ": Gemini embeds text only (not token arrays)")
            raise BadRequest("'input' must be a string or a list of strings.", param="input")
        requests = [self._embed_request(model, text, body) for text in texts]
        path = (
            f"/v1beta/models/{model}:embedContent"
            if one
            else f"/v1beta/models/{model}:batchEmbedContents"
        )
        request: Any = requests[0] if one else {"requests": requests}
        return ProviderCall(
            method="POST", path=path, headers=self._headers(), body=orjson.dumps(request)
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
        if not isinstance(error, Mapping):
            error = {}
        failure = self._google_failure(status, error)
        passed = [
            (name.lower(), value)
            for name, value in headers.items()
            if name.lower() == "retry-after" or name.lower().startswith("x-ratelimit-")
        ]
        if not passed:
            return failure
        # The upstream's own Retry-After wins over the one read from the error's details.
        derived = () if any(name == "retry-after" for name, _ in passed) else tuple(failure.headers)
        return ProviderFailure(
            status=failure.status,
            type=failure.type,
            code=failure.code,
            message=failure.message,
            headers=tuple(passed) + derived,
        )

    def _google_failure(self, status: int, error: Mapping[str, Any]) -> ProviderFailure:
        """A `google.rpc.Status`-shaped error object (`code`, `message`, `status`, `details`)."""
        reasons = {
            detail.get("reason")
            for detail in error.get("details") or ()
            if isinstance(detail, Mapping)
        }
        if "API_KEY_INVALID" in reasons or error.get("status") == "UNAUTHENTICATED":
            status = 401  # Gemini answers a wrong key with 400 INVALID_ARGUMENT
        mapped_status, kind, code = _BY_STATUS.get(
            status, _UPSTREAM if status >= 500 else _BY_STATUS[400]
        )
        message = error.get("message")
        if isinstance(message, str) and message:
            text = f"Gemini: {self._without_key(message)[:_MESSAGE_LIMIT]}"
        else:
            text = f"Gemini answered HTTP {status}."
        retry = _retry_after(error) if mapped_status == 429 else None
        return ProviderFailure(
            status=mapped_status,
            type=kind,
            code=code,
            message=text,
            headers=(("retry-after", retry),) if retry else (),
        )

    def _without_key(self, message: str) -> str:
        if self._api_key is None or not self._api_key.reveal():
            return message
        return message.replace(self._api_key.reveal(), "***")


def _retry_after(error: Mapping[str, Any]) -> str | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "37s"`), rounded up."""
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping) and isinstance(detail.get("retryDelay"), str):
            found = _RETRY_DELAY.fullmatch(detail["retryDelay"])
            if found:
                return str(math.ceil(float(found.group(1))))
    return None
