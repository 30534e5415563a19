"""Azure OpenAI: OpenAI's API behind deployment URLs.

`POST {base}/openai/deployments/{deployment}/chat/completions?api-version={api_version}` (and
`/embeddings`), authenticated with an `api-key` header. The deployment is the `deployment`
setting, else the request's `model` (a deployment is named by its operator, often after the
model); the body goes without `model`, which the URL already says. Answers are OpenAI's, plus
Azure's content-filter annotations (`prompt_filter_results`, `content_filter_results`, kept as
they are; a filtered answer's finish reason is OpenAI's own `content_filter`). Streams may open
with a chunk holding only the prompt's filter results: dropped, as OpenAI sends none. Errors come
as `{"error": {"code", "message"}}` (a content-filtered prompt is a 400 with code
`content_filter`) or, from Azure's API management in front, `{"statusCode", "message"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final
from urllib.parse import quote

import orjson

from fd2.serving.errors import BadRequest
from fd2_inference.providers.base import (
    Framing,
    ProviderCall,
    ProviderFailure,
    ProviderSettings,
    path_segment,
)
from fd2_inference.providers.openai import (
    EVENT_STREAM,
    JSON,
    OpenAIChunks,
    json_object,
    openai_failure,
)

DEFAULT_API_VERSION: Final = "2024-10-21"
"""The latest generally available data-plane API version when this was written."""


class AzureProvider:
    name: ClassVar[str] = "azure"
    framing: ClassVar[Framing] = "sse"
    passthrough: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings) -> None:
        self._deployment = settings.deployment or None
        self._query = "?api-version=" + quote(settings.api_version or DEFAULT_API_VERSION, safe="")
        auth = (("api-key", settings.api_key),) if settings.api_key else ()
        self._headers = {
            stream: (*auth, ("accept", EVENT_STREAM if stream else JSON), ("content-type", JSON))
            for stream in (False, True)
        }

    def _path(self, body: Mapping[str, Any], operation: str) -> str:
        deployment = self._deployment or body.get("model")
        if not isinstance(deployment, str) or not deployment:
            raise BadRequest("'model' (the Azure deployment) is required.", param="model")
        segment = path_segment(deployment)
        if segment is None:
            raise BadRequest("'model' is not a valid Azure deployment name.", param="model")
        return f"/openai/deployments/{segment}/{operation}{self._query}"

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        path = self._path(body, "chat/completions")
        sent = {key: value for key, value in body.items() if key != "model"}
        return ProviderCall("POST", path, self._headers[stream], orjson.dumps(sent), stream)

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return json_object(payload)

    def chat_stream(self, *, model: str, include_usage: bool) -> OpenAIChunks:
        return OpenAIChunks(self.name, skip_empty=True)

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        path = self._path(body, "embeddings")
        sent = {key: value for key, value in body.items() if key != "model"}
        return ProviderCall("POST", path, self._headers[False], orjson.dumps(sent))

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return json_object(payload)

    def failure(self, status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
        return openai_failure(status, headers, payload, provider=self.name)
