"""The response cache step: exact-match answers from Redis (docs/cache.md).

The key is the native canonical cache key (`fd2.cache_keys`) of the body without the fields the
module says do not change the answer (`Module.cache_key_ignores`), under
`fd2:cache:<project>:<module>:<environment>:<model>:`, with a suffix naming the endpoint (a
digest of its path). The fields that change the answer's shape
but not its content (`cache_variant_fields`: for OpenAI `stream` and `stream_options`) add a
short suffix, so a streamed request is answered with a stored stream, a plain one with a stored
body.

A hit answers from the cache: it went through the route's request limits (the step runs after
them) but charges no tokens (its usage is reported as zero). Identical misses collapse: in a
worker they wait for the first one's answer, across workers and replicas a short Redis lock makes
them wait for its stored entry.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from typing import Final

import orjson

from fd2.audit.notes import NOTES
from fd2.cache_keys import CacheKeyer, CacheKeyError
from fd2.metering import Meter, Usage
from fd2.module import Handler
from fd2.response_cache.entry import CACHE_HEADER, ENCODER, Entry, Recorder, decode, replay
from fd2.response_cache.flight import Flights
from fd2.response_cache.settings import CacheSettings, Directive, directive
from fd2.response_cache.store import PREFIX, CacheStore
from fd2.serving import request_metrics
from fd2.serving.errors import Fd2Error
from fd2.serving.request import Request
from fd2.types import Message, Send

_FREE: Final = Usage(prompt_tokens=0)
_HIT: Final = [(CACHE_HEADER, b"hit")]


class ResponseCache:
    __slots__ = (
        "_flights",
        "_generation",
        "_keyer",
        "_meter",
        "_prefix",
        "_settings",
        "_store",
        "_variant",
    )

    def __init__(
        self,
        *,
        settings: CacheSettings,
        store: CacheStore,
        flights: Flights,
        project: str,
        module: str,
        environment: str,
        ignores: frozenset[str],
        variant_fields: frozenset[str],
        meter: Meter | None,
        generation: str = "",
    ) -> None:
        self._generation = ":" + generation if generation else ""
        self._settings = settings
        self._store = store
        self._flights = flights
        self._meter = meter
        self._variant = tuple(sorted(variant_fields))
        self._keyer = CacheKeyer(
            exclude=sorted(ignores | variant_fields),
            namespace=f"{project}/{module}/{environment}",
        )
        self._prefix = f"{PREFIX}{project}:{module}:{environment}:"

    async def __call__(self, request: Request, send: Send, call_next: Handler) -> None:
        if request.method != "POST":
            await call_next(request, send)
            return
        wanted = directive(request.scope["headers"], self._settings)
        key = await self._key(request) if wanted.read or wanted.ttl_s else None
        if key is None:
            _counted(request, "bypass")
            await call_next(request, _Tagged(send))
            return
        if not wanted.read:  # no-cache: a fresh answer, stored for the next callers
            _counted(request, "miss")
            await self._fetch(request, send, call_next, key, wanted)
            return
        raw = await self._store.get(key)
        entry = decode(raw) if raw is not None else None
        if entry is not None:
            await _hit(request, send, entry)
            return
        flight = self._flights.join(key)
        if flight is not None:
            entry = await asyncio.shield(flight)
            if entry is not None:
                await _hit(request, send, entry)
                return
            _counted(request, "miss")
            await self._fetch(request, send, call_next, key, wanted)
            return
        entry = None
        token: str | None = None
        try:
            token = await self._store.lock(key, self._settings.lock_s)
            if token is None:  # another worker or replica is fetching it: wait for its entry
                raw = await self._store.wait(key, self._settings.lock_s)
                entry = decode(raw) if raw is not None else None
                if entry is not None:
                    await _hit(request, send, entry)
                    return
            _counted(request, "miss")
            entry = await self._fetch(request, send, call_next, key, wanted)
        finally:
            self._flights.land(key, entry)
            if token is not None:
                await self._store.unlock(key, token)

    async def _key(self, request: Request) -> str | None:
        """The entry's Redis key; None when the request cannot be cached (not strict JSON)."""
        try:
            digest = self._keyer.key(await request.body())
            model = None
            if self._meter is not None:
                cost = request.cost
                model = cost.model if cost is not None else await self._meter.model(request)
            variant = ""
            if self._variant:
                body = await request.json_object()
                shape = {name: body[name] for name in self._variant if name in body}
                if shape:
                    canonical = orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)
                    variant = ":" + hashlib.sha256(canonical).hexdigest()[:16]
        except (CacheKeyError, Fd2Error):  # the module gives the error this body deserves
            return None
        # The endpoint is part of the key: one body can be valid for two endpoints of a module
        # (chat completions and Anthropic's messages both take model, messages, max_tokens),
        # and neither may be answered with the other's answer.
        variant += ":" + _endpoint_digest(request.path) + self._generation
        if self._settings.scope == "caller":
            identity = request.identity
            caller = identity.credential if identity is not None else "-"
            variant += ":" + hashlib.sha256(caller.encode()).hexdigest()[:16]
        return f"{self._prefix}{model or '-'}:{digest}{variant}"

    async def _fetch(
        self, request: Request, send: Send, call_next: Handler, key: str, wanted: Directive
    ) -> Entry | None:
        recorder = Recorder(send, self._settings.max_entry_bytes)
        await call_next(request, recorder)
        entry = recorder.entry()
        if entry is None:
            return None
        if wanted.ttl_s > 0:
            await self._store.put(key, ENCODER.encode(entry), wanted.ttl_s)
        return entry


@functools.lru_cache(maxsize=256)
def _endpoint_digest(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:12]


async def _hit(request: Request, send: Send, entry: Entry) -> None:
    request.report_usage(_FREE)  # a hit uses no tokens: limits refund the reservation
    _counted(request, "hit")
    await replay(entry, send, _HIT)


def _counted(request: Request, result: str) -> None:
    notes = NOTES.get()
    if notes is not None:
        notes.cache = result
    metrics = request_metrics.current()
    if metrics is not None:
        metrics.count(
            metrics.cache_lookups, request.project, request.module, request.environment, result
        )


class _Tagged:
    """`send` with `x-fd2-cache: bypass` on the answer."""

    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (CACHE_HEADER, b"bypass")]
        await self._send(message)
