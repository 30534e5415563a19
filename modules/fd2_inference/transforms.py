"""Pure request transforms: validate an OpenAI request and fill in the manifest's defaults.

No I/O here. Each `prepare_*` takes the decoded request object and returns what to send upstream;
the input is never mutated, and `changed` tells whether the client's original bytes can be
forwarded as they are (the common case, which saves a re-serialisation).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
import orjson

from fd2.serving.errors import BadRequest, ConfigError
from fd2_inference.config import InferenceConfig

_INSTRUCTION_ROLES: Final = frozenset({"system", "developer"})
# Longest first: ".../chat/completions" also ends with "/completions".
_ENDPOINT_SUFFIXES: Final = ("/chat/completions", "/completions", "/embeddings", "/models")


class Defaults(msgspec.Struct, frozen=True, kw_only=True):
    """Manifest values applied to requests that do not set them."""

    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    system_prompt: str | None = None


class Prepared(msgspec.Struct, frozen=True):
    payload: dict[str, Any]
    """The request as it goes upstream (the client's own dict when nothing changed)."""
    changed: bool
    stream: bool


def defaults_from(config: InferenceConfig) -> Defaults:
    # Empty strings in a manifest mean "not set", not "send an empty model / prompt".
    return Defaults(
        model=config.model_name or None,
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        system_prompt=config.system_prompt or None,
    )


def prepare_chat(body: dict[str, Any], defaults: Defaults) -> Prepared:
    """Validate a chat completion request and apply model, sampling and system-prompt defaults."""
    updates = _model_update(body, defaults)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array of messages.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadRequest(f"'messages[{index}]' must be an object.", param="messages")
    stream = _stream_flag(body)
    _sampling_updates(body, defaults, updates)
    if defaults.system_prompt is not None and not any(
        message.get("role") in _INSTRUCTION_ROLES for message in messages
    ):
        updates["messages"] = [{"role": "system", "content": defaults.system_prompt}, *messages]
    return _apply(body, updates, stream)


def prepare_completion(body: dict[str, Any], defaults: Defaults) -> Prepared:
    """Validate a (legacy) text completion request and apply model and sampling defaults."""
    updates = _model_update(body, defaults)
    if body.get("prompt") is None:
        raise BadRequest("'prompt' is required.", param="prompt")
    stream = _stream_flag(body)
    _sampling_updates(body, defaults, updates)
    return _apply(body, updates, stream)


def prepare_embedding(body: dict[str, Any], defaults: Defaults) -> Prepared:
    """Validate an embeddings request; only the model has a default."""
    updates = _model_update(body, defaults)
    if body.get("input") is None:
        raise BadRequest("'input' is required.", param="input")
    return _apply(body, updates, stream=False)


def upstream_body(original: bytes, prepared: Prepared) -> bytes:
    """The bytes to send upstream: the client's own when nothing changed, else one serialisation."""
    if not prepared.changed:
        return original
    try:
        return orjson.dumps(prepared.payload)
    except orjson.JSONEncodeError:
        # orjson reads deeper nesting than it writes; such a request cannot be forwarded.
        raise BadRequest("The request body is nested too deeply to be forwarded.") from None


class UpstreamTarget(msgspec.Struct, frozen=True):
    """Where requests go: a base URL the OpenAI paths are appended to, or (chat_only) the one
    chat completions endpoint the manifest names."""

    url: str
    chat_only: bool = False


def upstream_target(primary: str | None, endpoint_url: str | None) -> UpstreamTarget:
    """A manifest's primary endpoint (a base URL), else the Control Tower's `endpoint_url`.

    `endpoint_url` is the inference endpoint itself. One that ends with an OpenAI endpoint path
    (`/chat/completions`, `/completions`, `/embeddings`, `/models`) also gives the base the other
    endpoints derive from; any other path is the chat endpoint, used exactly as written.
    """
    if primary and primary.strip():
        return UpstreamTarget(_checked(primary.strip(), "endpoints.primary").rstrip("/"))
    if not endpoint_url or not endpoint_url.strip():
        raise ConfigError(
            "inference module has no upstream: set endpoint_url in its config "
            "or endpoints.<environment>.primary in its manifest"
        )
    url = endpoint_url.strip()
    base = _strip_endpoint(url.rstrip("/"))
    if base is not None:
        return UpstreamTarget(_checked(base, "endpoint_url").rstrip("/"))
    return UpstreamTarget(_checked(url, "endpoint_url", query_ok=True), chat_only=True)


def provider_base_url(primary: str | None, endpoint_url: str | None) -> str:
    """A translated provider's base URL: the manifest's primary endpoint, else `endpoint_url`,
    as written (the provider's paths are appended to it; no OpenAI path is taken off)."""
    for source, value in (("endpoints.primary", primary), ("endpoint_url", endpoint_url)):
        if value and value.strip():
            return _checked(value.strip(), source).rstrip("/")
    raise ConfigError(
        "inference module has no upstream: set endpoint_url in its config "
        "or endpoints.<environment>.primary in its manifest"
    )


@lru_cache(maxsize=4096)  # set-up parses the same few URLs for every route of a large table
def _checked(url: str, source: str, *, query_ok: bool = False) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source} must be an absolute http(s) URL (scheme {parts.scheme!r})")
    if parts.fragment or (parts.query and not query_ok):
        raise ConfigError(f"{source} must not carry a query string or fragment")
    return url


def display_url(url: str) -> str:
    """`url` without any user:password part, safe for logs and error messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _strip_endpoint(url: str) -> str | None:
    for suffix in _ENDPOINT_SUFFIXES:
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return None


def _model_update(body: dict[str, Any], defaults: Defaults) -> dict[str, Any]:
    model = body.get("model")
    if model is None or model == "":
        if defaults.model is None:
            raise BadRequest("'model' is required.", param="model")
        return {"model": defaults.model}
    if not isinstance(model, str):
        raise BadRequest("'model' must be a string.", param="model")
    return {}


def _stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream")
    # null is what OpenAI's schema allows besides a boolean; it means "not streaming".
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean.", param="stream")
    return stream


def _sampling_updates(body: dict[str, Any], defaults: Defaults, updates: dict[str, Any]) -> None:
    # A key the client sent (even as null) is the client's choice and is never overridden.
    if (
        defaults.max_tokens is not None
        and "max_tokens" not in body
        and "max_completion_tokens" not in body
    ):
        updates["max_tokens"] = defaults.max_tokens
    if defaults.temperature is not None and "temperature" not in body:
        updates["temperature"] = defaults.temperature
    if defaults.top_p is not None and "top_p" not in body:
        updates["top_p"] = defaults.top_p


def _apply(body: dict[str, Any], updates: dict[str, Any], stream: bool) -> Prepared:
    if not updates:
        return Prepared(body, changed=False, stream=stream)
    return Prepared({**body, **updates}, changed=True, stream=stream)
