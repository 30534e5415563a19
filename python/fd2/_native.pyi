"""Type stub for fd2._native, the gateway's Rust extension (source: rust/src)."""

import datetime
import uuid
from collections.abc import Sequence
from typing import Any, Final, TypeAlias, final

from fd2.serving.errors import Fd2Error

__all__ = [
    "CACHE_KEY_VERSION",
    "PII_KINDS",
    "PII_WINDOW",
    "CacheKeyError",
    "CacheKeyer",
    "EventStreamDecoder",
    "EventStreamError",
    "GcraBuckets",
    "GcraPlan",
    "KeyDigester",
    "NativeError",
    "PiiScanner",
    "SseDecoder",
    "SseEventTooLarge",
    "SseFramer",
    "SseStateError",
    "UnknownEncoding",
    "build_info",
    "count_tokens",
    "count_tokens_all",
    "decode_tokens",
    "encode",
    "encoding_for_model",
    "encoding_loaded",
    "presented_credential",
]

CACHE_KEY_VERSION: Final[str]
PII_KINDS: Final[list[str]]
PII_WINDOW: Final[int]

class NativeError(Fd2Error):
    """Root of every exception raised by fd2._native (an fd2.serving.errors.Fd2Error)."""

class SseStateError(NativeError):
    """An SSE framer was called in a state that does not allow it (e.g. feed() after finish())."""

class SseEventTooLarge(NativeError):
    """One server-sent event grew beyond the framer's max_event_bytes."""

class UnknownEncoding(NativeError):
    """A token encoding name (or token id) that fd2 does not know."""

class CacheKeyError(NativeError):
    """A request body that cannot be canonicalised (not JSON, duplicate keys, ...)."""

class EventStreamError(NativeError):
    """AWS event stream bytes that are not a valid message (CRC, lengths, headers, size limit)."""

@final
class SseFramer:
    """Incremental framer for `text/event-stream` bytes.

    `feed()` returns the original bytes of every completed event (the very same object when
    nothing was held back and the chunk ends on an event boundary). With `openai=True` it reads
    usage, finish reason, model, id and in-stream errors out of the events; `collect_text=True`
    also gathers the generated text; `hold_done=True` keeps the `[DONE]` event (and anything
    after it) for `take_held()`. `finish()` drops an unterminated last event, as the WHATWG rules
    say, and returns its size.
    """

    def __new__(
        cls,
        *,
        max_event_bytes: int = 16777216,
        openai: bool = False,
        collect_text: bool = False,
        hold_done: bool = False,
    ) -> SseFramer: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> int: ...
    def take_held(self) -> bytes: ...
    @property
    def done(self) -> bool: ...
    @property
    def events(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def discarded(self) -> int: ...
    @property
    def model(self) -> str | None: ...
    @property
    def response_id(self) -> str | None: ...
    @property
    def created(self) -> int | None: ...
    @property
    def usage(self) -> tuple[int, int, int] | None: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def parsed(self) -> int: ...

@final
class SseDecoder:
    """Full WHATWG event-stream decoder: `feed()` returns the dispatched events as
    (event type, data, last event id); `finish()` drops an unterminated last event."""

    def __new__(cls, *, max_event_bytes: int = 16777216) -> SseDecoder: ...
    def feed(self, chunk: bytes) -> list[tuple[str, str, str]]: ...
    def finish(self) -> int: ...
    @property
    def retry(self) -> int | None: ...

_HeaderValue: TypeAlias = bool | int | bytes | str | datetime.datetime | uuid.UUID

@final
class EventStreamDecoder:
    """Incremental decoder for AWS `application/vnd.amazon.eventstream` bytes (Bedrock's
    ConverseStream): `feed()` returns the messages completed so far as (headers, payload), both
    CRCs checked; headers map names to typed values (timestamps as aware UTC datetimes, uuids as
    UUID; the first of a repeated name wins). A CRC mismatch, impossible length, malformed header
    or a message over `max_message_bytes` raises EventStreamError, after which every call does;
    when the chunk also completed good messages before the bad one, those are returned and the
    next call raises. `finish()` returns the size of an unfinished last message (0 on a clean
    end)."""

    def __new__(cls, *, max_message_bytes: int = 16777216) -> EventStreamDecoder: ...
    def feed(self, chunk: bytes) -> list[tuple[dict[str, _HeaderValue], bytes]]: ...
    def finish(self) -> int: ...
    @property
    def messages(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def max_message_bytes(self) -> int: ...

def encode(text: str, encoding: str = "o200k_base") -> list[int]: ...
def count_tokens(text: str, encoding: str = "o200k_base") -> int: ...
def count_tokens_all(texts: Sequence[str], encoding: str = "o200k_base") -> int: ...
def decode_tokens(ids: Sequence[int], encoding: str = "o200k_base") -> bytes: ...
def encoding_for_model(model: str) -> str: ...
def encoding_loaded(encoding: str) -> bool: ...

@final
class CacheKeyer:
    """Turns JSON request bodies into stable cache keys: SHA-256 (hex) of
    `CACHE_KEY_VERSION`, the namespace and the canonical JSON of the body, with the
    top-level members named in `exclude` left out."""

    def __new__(cls, *, exclude: Sequence[str] = ..., namespace: str = "") -> CacheKeyer: ...
    def key(self, body: bytes) -> str: ...
    def canonical(self, body: bytes) -> bytes: ...
    @property
    def exclude(self) -> list[str]: ...
    @property
    def namespace(self) -> str: ...

@final
class KeyDigester:
    """HMAC-SHA-256 under one key (the gateway's API-key pepper), set up once."""

    def __new__(cls, pepper: bytes) -> KeyDigester: ...
    def digest(self, message: str) -> bytes:
        """The 32-byte HMAC-SHA-256 of `message`, UTF-8 encoded."""

@final
class GcraBuckets:
    """The in-process limiter's buckets: theoretical arrival times (µs) by storage key, and the
    GCRA decision over a request's buckets in one call (`fd2.limits.gcra.decide`'s arithmetic).
    Each spec is read for its `key`, `limit` and `interval_us`."""

    def __new__(cls) -> GcraBuckets: ...
    def acquire(
        self, specs: tuple[Any, ...], costs: Sequence[int], now: int
    ) -> tuple[bool, int, list[int], list[int]]:
        """(allowed, retry_after_us, remaining, reset_us); the new TATs are stored if allowed."""
    def adjust(self, specs: tuple[Any, ...], deltas: Sequence[int], now: int) -> None:
        """Charges `deltas` more units (negative: gives units back), one per spec."""
    def plan(self, specs: tuple[Any, ...]) -> GcraPlan:
        """These buckets, fixed for a route: decided per request without reading a spec or
        hashing a key. They share their state with this store."""
    def __len__(self) -> int: ...

@final
class GcraPlan:
    """One route's fixed buckets, planned by `GcraBuckets.plan`."""

    def admit(
        self, tokens: int, now: int
    ) -> list[tuple[bytes, bytes]] | tuple[int, list[int], list[int]]:
        """Admitted (one per requests bucket, `tokens` per tokens bucket): the new state is
        stored and the x-ratelimit-* headers returned. Refused: nothing changes, and
        `(retry_after_us, remaining, reset_us)` is returned, one entry per bucket."""
    def settle(self, delta: int, now: int) -> None:
        """Charges `delta` more tokens to every tokens bucket (negative: gives them back)."""
    @property
    def counts_tokens(self) -> bool:
        """Whether any bucket counts tokens."""
    def __len__(self) -> int: ...

def build_info() -> dict[str, str]:
    """How this extension was built: version, rustc, target, profile, opt_level, debug asserts."""

@final
class PiiScanner:
    """Finds PII of the given kinds (`PII_KINDS`) in text: e-mail addresses, phone numbers,
    payment cards (Luhn), IBANs (mod 97), US SSNs, IPv4/IPv6 addresses, credentials."""

    def __new__(cls, kinds: Sequence[str]) -> PiiScanner: ...
    def scan(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of each match, ordered, offsets in characters."""

def presented_credential(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The credential among ASGI `headers`: `authorization: Bearer`, `api-key` or
    `x-api-key`; None without one. ValueError for one to refuse: another scheme, two
    different credentials, or anything but printable ASCII without spaces, or over 16 KiB."""
