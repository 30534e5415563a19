"""The provider seam: what translating OpenAI's inference API to one provider's wire API takes.

A provider is pure: it turns an OpenAI-shaped request body into the call to send, and the
provider's answer, stream events and errors back into OpenAI's shapes. It never does I/O; the
module's relays send the call, frame the stream (SSE or AWS event stream) and hand the events
over. Keeping I/O apart is what lets one conformance table of recorded transcripts drive every
provider, and what keeps the OpenAI passthrough free of any translation cost.

Bodies are the decoded JSON objects (dicts); the OpenAI shapes are those of OpenAI's API
reference (`chat.completion`, `chat.completion.chunk`, `list` of `embedding`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Protocol
from urllib.parse import quote

ParamPolicy = Literal["refuse", "drop"]
"""What a provider does with a request parameter it cannot honour: a 400 naming it (`refuse`,
the default), or leave it out and say so in the log (`drop`). Never a silent mistranslation."""

Framing = Literal["sse", "eventstream"]


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What a provider is built from (`ProviderClass(settings)`, once per module): the module's
    provider settings as its config gives them (`metadata.fd2.modules.<name>.config` included),
    credentials revealed. A provider reads what it needs and ignores the rest; a setting it
    requires and lacks is a `fd2.serving.errors.ConfigError` raised from its constructor."""

    name: str
    """The `provider` setting ("openai", "azure", "anthropic", ...)."""
    base_url: str
    """The upstream base URL (`endpoints.<env>.primary`, else `endpoint_url`; no trailing /).
    `ProviderCall.path` is appended to it."""
    api_key: str | None = None
    api_version: str | None = None
    """Azure's `api-version` query value, Anthropic's `anthropic-version` header, ..."""
    deployment: str | None = None
    """Azure's deployment name (the model of the request maps to it)."""
    region: str | None = None
    """Bedrock's AWS region (SigV4 scope)."""
    unsupported_params: ParamPolicy = "refuse"
    model: str | None = None
    """The module's default model (`model_name`), already applied to request bodies."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """`provider_options` of the config: anything provider specific not named above."""
    credentials: Mapping[str, str] = field(default_factory=dict)
    """Further secrets by name, revealed (`aws_access_key_id`, `aws_secret_access_key`,
    `aws_session_token`). Never logged; the relays scrub answers of every value here."""


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One request as the provider wants it: method, path and query below the provider's base
    URL, headers (credentials included; the relay adds `x-request-id`) and the body."""

    method: str
    path: str
    headers: Sequence[tuple[str, str]]
    body: bytes | None
    stream: bool = False
    dropped: tuple[str, ...] = ()
    """Parameters left out under the `drop` policy: the module logs them (never silent)."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One framed event of a provider's stream: its name (SSE `event:` or the event stream's
    `:event-type` header; None when the protocol names none) and its payload bytes."""

    name: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """A provider's error answer in OpenAI's terms: the status that keeps its meaning (401, 403,
    404, 400, 413, 429, overloaded 503, upstream 5xx 502), OpenAI's error `type` and `code`, a
    message safe to show the client, and the headers to pass through (`retry-after`, the
    rate-limit ones)."""

    status: int
    type: str
    message: str
    code: str | None = None
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


class UnsupportedParameter(ValueError):
    """A request parameter this provider cannot honour under the `refuse` policy; the module
    answers 400 with `param` set to it."""

    def __init__(self, param: str, provider: str, why: str = "") -> None:
        super().__init__(f"{param!r} is not supported by provider {provider!r}{why}")
        self.param = param


class UnsupportedParams:
    """One call's `unsupported_params` policy, called with each parameter the provider cannot
    honour: under `refuse` it raises UnsupportedParameter (a 400 naming it); under `drop` it
    notes the parameter once in `dropped` (ProviderCall.dropped: the module logs it)."""

    __slots__ = ("_provider", "_refuse", "dropped")

    def __init__(self, provider: str, policy: ParamPolicy) -> None:
        self._provider = provider
        self._refuse = policy == "refuse"
        self.dropped: list[str] = []

    def __call__(self, param: str, why: str = "") -> None:
        if self._refuse:
            raise UnsupportedParameter(param, self._provider, why)
        if param not in self.dropped:
            self.dropped.append(param)


class StreamTranslator(Protocol):
    """Translates one stream: fed the provider's events in order, returns the OpenAI
    `chat.completion.chunk` objects to send for each (often none, sometimes several)."""

    def feed(self, event: StreamEvent) -> Sequence[Mapping[str, Any]]: ...

    def finish(self) -> Sequence[Mapping[str, Any]]:
        """At the provider's end of stream: the last chunks (the finish reason, usage when the
        client asked for it). Raises ProviderStreamError when the stream ended before its end."""
        ...

    @property
    def usage(self) -> Mapping[str, int] | None:
        """OpenAI-shaped usage seen so far (`prompt_tokens`, `completion_tokens`, ...)."""
        ...


class Deframer(Protocol):
    """Cuts one provider stream's bytes into events; one per stream. `feed` takes each chunk as
    it arrives (cut anywhere, even inside a frame's header) and returns the events it completed;
    `finish` at the end of the bytes returns how many bytes of an unfinished event were dropped.
    Raises ValueError (or a NativeError) for bytes that cannot be framed (a bad checksum)."""

    def feed(self, chunk: bytes) -> Sequence[StreamEvent]: ...

    def finish(self) -> int: ...


FrameEventstream = Callable[[], Deframer]
"""The seam for AWS's `application/vnd.amazon.eventstream` framing (prov-bedrock supplies it as
`fd2_inference.providers.eventstream.frame_eventstream`): a new Deframer per stream. SSE framing
is the module's own (`fd2_inference.framing.SseDeframer`)."""


class ProviderStreamError(Exception):
    """The provider's stream said it failed (an `error` event) or ended before its end; the
    relay ends the client's stream with one OpenAI error event built from `failure`."""

    def __init__(self, failure: ProviderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Provider(Protocol):
    """One provider's translation. Instances are built once per module (from its settings) and
    shared by every request: no per-request state outside the StreamTranslator."""

    name: ClassVar[str]
    framing: ClassVar[Framing]
    passthrough: ClassVar[bool]
    """True for OpenAI-compatible servers: the relays send the client's bytes unchanged and none
    of the methods below is called on the hot path."""

    def chat_call(self, body: Mapping[str, Any], *, stream: bool) -> ProviderCall: ...

    def chat_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]: ...

    def chat_stream(self, *, model: str, include_usage: bool) -> StreamTranslator: ...

    def embeddings_call(self, body: Mapping[str, Any]) -> ProviderCall:
        """Raises UnsupportedParameter("input", ...) when the provider has no embeddings."""
        ...

    def embeddings_answer(self, payload: bytes, *, model: str) -> Mapping[str, Any]: ...

    def failure(
        self, status: int, headers: Mapping[str, str], payload: bytes
    ) -> ProviderFailure: ...


class ChatService(Protocol):
    """The module's chat path as other endpoints of the module use it (the Anthropic inbound
    `/v1/messages`, later the Responses API): an OpenAI chat request body in, OpenAI objects
    out, over whichever provider the module is configured for. Failures are raised as
    `fd2.serving.errors.Fd2Error` subclasses (already in OpenAI's terms) before the first chunk;
    after it, a failed stream raises ProviderStreamError."""

    async def complete(self, body: dict[str, Any], request: Any) -> Mapping[str, Any]: ...

    def stream(self, body: dict[str, Any], request: Any) -> AsyncIterator[Mapping[str, Any]]: ...


def path_segment(value: str) -> str | None:
    """`value` (a model or deployment name) as one percent-encoded URL path segment, or None
    when it cannot be one: `.` and `..` survive percent-encoding and the HTTP client resolves
    them (`/model/../converse` is sent as `/converse`), so a client's model would choose
    another path of the provider's API."""
    if value.strip() in ("", ".", ".."):
        return None
    return quote(value, safe="")


# --- Helpers every provider's `failure` may use: one mapping of statuses for all of them.

_KINDS: dict[int, tuple[int, str, str | None]] = {
    400: (400, "invalid_request_error", None),
    401: (401, "authentication_error", "invalid_api_key"),
    403: (403, "permission_error", None),
    404: (404, "not_found_error", "model_not_found"),
    408: (504, "upstream_error", "gateway_timeout"),
    413: (413, "invalid_request_error", "request_too_large"),
    422: (400, "invalid_request_error", None),
    429: (429, "rate_limit_error", "rate_limit_exceeded"),
    503: (503, "server_error", "upstream_overloaded"),
    504: (504, "upstream_error", "gateway_timeout"),
    529: (503, "server_error", "upstream_overloaded"),
}
"""A provider's HTTP status -> (the status fd2 answers, OpenAI error type, default code)."""

OVERLOADED: Final[tuple[int, str, str | None]] = (503, "server_error", "upstream_overloaded")
"""What an overloaded provider becomes whatever its status (Anthropic 529, `overloaded_error`)."""


def standard_failure(
    status: int,
    message: str,
    headers: Mapping[str, str],
    *,
    code: str | None = None,
    overloaded: bool = False,
) -> ProviderFailure:
    """The ProviderFailure for a provider status (and its headers) under the shared mapping:
    401/403/404/400/413/429 keep their meaning, overloaded -> 503, other 5xx -> 502, other 4xx
    kept as they are; `retry-after` and rate-limit headers passed through. `code` (the
    provider's own, when it has one worth keeping) replaces the default code."""
    if overloaded:
        kind = OVERLOADED
    elif status in _KINDS:
        kind = _KINDS[status]
    elif status >= 500:
        kind = (502, "upstream_error", "bad_gateway")
    elif status >= 400:
        kind = (status, "invalid_request_error", None)
    else:  # a success status with an error body: still an upstream failure
        kind = (502, "upstream_error", "bad_gateway")
    answered, error_type, default_code = kind
    return ProviderFailure(
        status=answered,
        type=error_type,
        message=message or f"The provider answered HTTP {status}.",
        code=code or default_code,
        headers=passed_headers(headers),
    )


def passed_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The answer headers a client of an error needs: `retry-after` (`-ms`) and rate limits."""
    return tuple(
        (name.lower(), value)
        for name, value in headers.items()
        if name.lower() in ("retry-after", "retry-after-ms") or "ratelimit" in name.lower()
    )
