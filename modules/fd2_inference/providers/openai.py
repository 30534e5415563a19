"""OpenAI and every OpenAI-compatible server (vLLM, Ollama's /v1, TGI, llama.cpp, Groq, Together,
Mistral, DeepSeek, ...): a passthrough.

The module's relays send the client's bytes unchanged to such a provider and never call the
methods below on its HTTP endpoints (`passthrough`). They exist for the module's in-process chat
path (`ChatService`, used by /v1/messages), which needs OpenAI objects from any provider, and
they are the identity translation Azure builds on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import orjson

from fd2_inference.providers.base import (
    Framing,
    ProviderCall,
    ProviderFailure,
    ProviderSettings,
    ProviderStreamError,
    StreamEvent,
    standard_failure,
)

JSON: Final = "application/json"
EVENT_STREAM: Final = "text/event-stream"


def json_object(payload: bytes) -> dict[str, Any]:
    """A provider's JSON object; ValueError for anything else (the relay's 502)."""
    value = orjson.loads(payload)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def openai_failure(
    status: int, headers: Mapping[str, str], payload: bytes, *, provider: str
) -> ProviderFailure:
    """An OpenAI-style error answer (`{"error": {"message", "type", "code"}}`, or the
    `{"message": ...}` of a proxy in front of it) in the shared status mapping; the provider's
    own code is kept when it names the failure."""
    message, code = "", None
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value = None
    error = value.get("error") if isinstance(value, dict) else None
    holder = error if isinstance(error, dict) else value if isinstance(value, dict) else {}
    if isinstance(holder.get("message"), str):
        message = holder["message"]
    if isinstance(holder.get("code"), str) and not holder["code"].isdigit():
        code = holder["code"]
    overloaded = status in (503, 529)
    return standard_failure(
        status,
        f"{provider} answered HTTP {status}: {message}" if message else "",
        headers,
        code=code,
        overloaded=overloaded,
    )


class OpenAIChunks:
    """OpenAI's own stream, decoded: each event's chunk as it is. `[DONE]` ends it; an `error`
    event raises ProviderStreamError. `skip_empty` drops chunks with neither choices nor usage
    (Azure's leading content-filter chunk, which OpenAI never sends)."""

    __slots__ = ("_done", "_finished", "_provider", "_skip_empty", "_usage")

    def __init__(self, provider: str, *, skip_empty: bool = False) -> None:
        self._provider = provider
        self._skip_empty = skip_empty
        self._done = False
        self._finished = False
        self._usage: Mapping[str, int] | None = None

    def feed(self, event: StreamEvent) -> Sequence[Mapping[str, Any]]:
        if event.data == b"[DONE]":
            self._done = True
            return ()
        if self._done or not event.data:
            return ()
        chunk = json_object(event.data)
        if "error" in chunk:
            raise ProviderStreamError(openai_failure(502, {}, event.data, provider=self._provider))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = chunk.get("choices")
        if isinstance(choices, list):
            if any(isinstance(c, dict) and c.get("finish_reason") for c in choices):
                self._finished = True
            if self._skip_empty and not choices and not isinstance(usage, dict):
                return ()
        return (chunk,)

    def finish(self) -> Sequence[Mapping[str, Any]]:
        if not (self._done or self._finished):
            raise ProviderStreamError(
                ProviderFailure(
                    502,
                    "upstream_error",
                    "The provider's stream ended before its answer was complete.",
                    code="upstream_stream_incomplete",
                )
            )
        return ()

    @property
    def usage(self) -> Mapping[str, int] | None:
        return self._usage


class OpenAIProvider:
    """OpenAI's API as it is: `Authorization: Bearer <api_key>`, paths below the base URL."""

    name: ClassVar[str] = "openai"
    framing: ClassVar[Framing] = "sse"
    passthrough: ClassVar[bool] = True

    def __init__(self, settings: ProviderSettings) -> None:
        self._chat_path = str(settings.options.get("chat_path", "/chat/completions"))
        auth = (("authorization", f"Bearer {settings.api_key}"),) if settings.api_key else ()
        self._headers = {
            stream: (*auth, ("accept", EVENT_STREAM if stream else JSON), ("content-type", JSON))
            for stream in (False, True)
        }

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall:
        return ProviderCall(
            "POST", self._chat_path, self._headers[stream], orjson.dumps(body), stream
        )

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return json_object(payload)

    def chat_stream(self, *, model: str, include_usage: bool) -> OpenAIChunks:
        return OpenAIChunks(self.name)

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        return ProviderCall("POST", "/embeddings", self._headers[False], orjson.dumps(body))

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]:
        return json_object(payload)

    def failure(self, status: int, headers: Mapping[str, str], payload: bytes) -> ProviderFailure:
        return openai_failure(status, headers, payload, provider=self.name)
