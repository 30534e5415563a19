"""An OpenAI-compatible upstream stand-in: a raw ASGI app served by Granian over real sockets.

Run it with ``python tests/standins/openai_upstream.py --host 127.0.0.1 --port 9100``.

Answers ``POST /v1/chat/completions`` (plain and SSE streaming), ``POST /v1/completions``,
``POST /v1/embeddings`` (deterministic vectors) and ``GET /v1/models``. A chat answer's content is
a JSON string describing what the stand-in received (model, messages, sampling fields, the
``Authorization`` and ``X-Request-ID`` headers, its own port, the client's port), so a test can
assert what a gateway forwarded. Streamed chat content is numbered (``"1;"``, ``"2;"`` ...) and the
first chunk carries the same description in an extra top-level ``standin`` field; embeddings and
model lists carry it there too.

Behaviours are chosen by the request's ``model`` (the one field a client controls that a gateway
forwards unchanged):

- ``error-400`` / ``error-429``: an OpenAI error JSON with that status ("stand-in says no");
- ``error-500-plain``: 500 with a text/plain body;
- ``error-context``: 400, OpenAI's ``context_length_exceeded`` error;
- ``garbage``: 200 with a body that is not JSON;
- ``stream-break``: streams 3 content chunks, then drops the connection mid-body;
- ``no-done``: a stream that ends cleanly without ``data: [DONE]``;
- ``stream-no-finish``: 3 content chunks, then a clean end with neither a ``finish_reason`` nor
  ``data: [DONE]`` (an answer cut short by the upstream itself);
- ``stream-garbage``: 200 ``text/event-stream`` whose body is an HTML page, not events;
- ``error-key``: 401, an OpenAI error whose message quotes every credential the request carried
  (``Authorization``, ``api-key``, ``x-api-key`` headers and the query string), as careless
  upstreams do; ``error-key-escaped``: the same with every character of the message written
  as a JSON unicode escape;
  ``stream-error-key``: a stream of 2 content chunks, then that error as an in-stream event;
- ``slow-<ms>``, ``chunks-<n>``, ``gap-<ms>``, combinable with dashes
  (``slow-200-chunks-20-gap-50``): wait before answering (before the first chunk when streaming),
  stream n content chunks (default 8), wait between chunks; ``tail-<pct>`` makes the wait a slow
  tail: only that percentage of requests wait (``slow-500-tail-5``).

A POST to any other path that ends with ``/chat/completions`` (a gateway route's rewritten path,
e.g. ``/openai/v1/chat/completions``) or with ``/convert`` (the Control Tower sample's endpoint)
is answered as a chat completion. ``GET /_standin/requests`` lists the path and every header of
the last requests answered (newest last), for what a description leaves out (``Host``, ...).

``GET /_standin/stats`` returns counters (requests started, completed, cancelled because the client
went away first, streams open now); ``POST /_standin/reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import logging
import random
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import Any

import orjson

from fd2.tokens import count_prompt, encoding_for_model
from fd2_inference.metering import count_chat

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_CHUNKS = 8
BREAK_AFTER = 3
MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "standin-echo")

_JSON = b"application/json"
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_DONE = b"data: [DONE]\n\n"
_GARBAGE = b"<html><body>502 definitely not JSON {{{"
_GARBAGE_PAGE = b"<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n\n"
_PLAIN_500 = b"stand-in internal failure (plain text)"


def _error_body(message: str, error_type: str, code: str | None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    )


_ERROR_400 = _error_body("stand-in says no", "invalid_request_error", "standin_refused")
_ERROR_429 = _error_body("stand-in says no: slow down", "requests", "rate_limit_exceeded")
_ERROR_CONTEXT = _error_body(
    "This model's maximum context length is 8 tokens (stand-in).",
    "invalid_request_error",
    "context_length_exceeded",
)


class Stats:
    """Process-wide counters; one Granian worker means one set of counters."""

    __slots__ = ("cancelled", "completed", "open_streams", "started")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.started = 0
        self.completed = 0
        self.cancelled = 0
        self.open_streams = 0

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "started": self.started,
                "completed": self.completed,
                "cancelled": self.cancelled,
                "open_streams": self.open_streams,
            }
        )


STATS = Stats()
RECENT: deque[dict[str, Any]] = deque(maxlen=64)
"""Path and headers of the last requests, for GET /_standin/requests."""
_ids = itertools.count(1)


class Behaviour:
    __slots__ = ("chunks", "gap_s", "kind", "slow_s", "tail")

    def __init__(
        self,
        kind: str,
        *,
        slow_s: float = 0.0,
        chunks: int = DEFAULT_CHUNKS,
        gap_s: float = 0.0,
        tail: int = 100,
    ) -> None:
        self.kind = kind
        self.slow_s = slow_s
        self.tail = tail
        """The percentage of requests that wait `slow_s` (a slow tail); 100: every one."""
        self.chunks = chunks
        self.gap_s = gap_s


_FIXED = {
    name: Behaviour(name)
    for name in (
        *("error-400", "error-429", "error-500-plain", "garbage", "stream-break", "no-done"),
        "no-usage",  # like many OpenAI-compatible servers: ignores stream_options.include_usage
        *("stream-no-finish", "stream-garbage", "error-key", "error-key-escaped"),
        "stream-error-key",
        "error-context",
    )
}
_ECHO = Behaviour("echo")


@lru_cache(maxsize=1024)
def behaviour_for(model: str) -> Behaviour:
    """The behaviour a model name selects; anything unrecognised is a plain echo."""
    fixed = _FIXED.get(model)
    if fixed is not None:
        return fixed
    parts = model.split("-")
    if len(parts) % 2 or not parts:
        return _ECHO
    values: dict[str, int] = {}
    for key, raw in zip(parts[::2], parts[1::2], strict=True):
        if key not in ("slow", "chunks", "gap", "tail") or not raw.isdigit() or key in values:
            return _ECHO
        values[key] = int(raw)
    return Behaviour(
        "echo",
        slow_s=values.get("slow", 0) / 1000,
        chunks=values.get("chunks", DEFAULT_CHUNKS),
        gap_s=values.get("gap", 0) / 1000,
        tail=values.get("tail", 100),
    )


def _slowed(behaviour: Behaviour) -> bool:
    if not behaviour.slow_s:
        return False
    return behaviour.tail >= 100 or random.randrange(100) < behaviour.tail


class _Exchange:
    """One request: what was received, and a lazily started watch for the client leaving."""

    __slots__ = (
        "_receive",
        "_watcher",
        "body",
        "client_port",
        "gone",
        "headers",
        "path",
        "port",
        "query",
    )

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self._receive = receive
        self._watcher: asyncio.Task[None] | None = None
        self.gone = asyncio.Event()
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self.path: str = scope["path"]
        self.query: str = scope.get("query_string", b"").decode("latin-1")
        server = scope.get("server")
        self.port: int | None = int(server[1]) if server else None
        client = scope.get("client")
        self.client_port: int | None = int(client[1]) if client else None
        self.body = b""

    async def read_body(self) -> bool:
        """Reads the body; False if the client disconnected first."""
        chunks = []
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return False
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.body = b"".join(chunks)
        return True

    def watch(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return

    async def pause(self, seconds: float) -> bool:
        """Waits; False if the client went away meanwhile."""
        if seconds <= 0:
            return not self.gone.is_set()
        self.watch()
        try:
            await asyncio.wait_for(self.gone.wait(), seconds)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    def credentials(self) -> str:
        """Every credential the request carried, quoted as a careless upstream's error does."""
        parts = [f"Authorization {self.header(b'authorization')}"]
        parts += [f"{name} {self.header(name.encode())}" for name in ("api-key", "x-api-key")]
        return "bad key: " + ", ".join(parts) + f"; query {self.query}"

    def describe(self, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "model": payload.get("model"),
            "messages": payload.get("messages"),
            "max_tokens": payload.get("max_tokens"),
            "max_completion_tokens": payload.get("max_completion_tokens"),
            "temperature": payload.get("temperature"),
            "top_p": payload.get("top_p"),
            "authorization": self.header(b"authorization"),
            "x_request_id": self.header(b"x-request-id"),
            "port": self.port,
            "path": self.path,
            "client_port": self.client_port,
            **extra,
        }


async def _send_whole(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    request_id: bytes | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if request_id is not None:
        headers.append((b"x-request-id", request_id))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _quoting_error(ex: _Exchange, *, escaped: bool = False) -> bytes:
    message = ex.credentials()
    if not escaped:
        return _error_body(message, "invalid_request_error", "invalid_api_key")
    quoted = "".join(f"\\u{ord(c):04x}" for c in message)  # valid JSON, no byte of the key
    return (
        b'{"error": {"message": "' + quoted.encode() + b'", "type": "invalid_request_error", '
        b'"param": null, "code": "invalid_api_key"}}'
    )


def _prompt_tokens(payload: dict[str, Any], chat: bool) -> int:
    """Prompt tokens as OpenAI counts them (its encodings and chat overheads)."""
    model = payload.get("model")
    encoding = encoding_for_model(model if isinstance(model, str) else "")
    messages = payload.get("messages")
    if chat:
        return count_chat(messages if isinstance(messages, list) else [], encoding)
    return count_prompt(payload.get("prompt"), encoding)


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class _StreamBroken(Exception):
    """Raised inside the app to make Granian abort a response mid-body."""


def _not_a_deliberate_break(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, _StreamBroken) and "_StreamBroken" not in record.getMessage()


def _quiet_deliberate_breaks() -> None:
    # Granian logs an app exception with its traceback; the deliberate break is not worth one.
    # Its records come from child loggers, so the filter goes on the handlers, which exist once
    # Granian has configured logging (before the first request).
    for handler in logging.getLogger("_granian").handlers:
        if _not_a_deliberate_break not in handler.filters:
            handler.addFilter(_not_a_deliberate_break)


async def _chat(ex: _Exchange, payload: dict[str, Any], send: Send, n: int) -> None:
    await _generate(ex, payload, send, n, chat=True)


async def _completions(ex: _Exchange, payload: dict[str, Any], send: Send, n: int) -> None:
    await _generate(ex, payload, send, n, chat=False)


async def _generate(
    ex: _Exchange, payload: dict[str, Any], send: Send, n: int, *, chat: bool
) -> None:
    model = payload.get("model")
    behaviour = behaviour_for(model) if isinstance(model, str) else _ECHO
    rid = b"req_standin_%d" % n
    kind = behaviour.kind
    if kind == "error-400":
        await _send_whole(send, 400, _ERROR_400, request_id=rid)
        STATS.completed += 1
        return
    if kind == "error-429":
        await _send_whole(send, 429, _ERROR_429, request_id=rid)
        STATS.completed += 1
        return
    if kind == "error-context":
        await _send_whole(send, 400, _ERROR_CONTEXT, request_id=rid)
        STATS.completed += 1
        return
    if kind == "error-500-plain":
        await _send_whole(send, 500, _PLAIN_500, b"text/plain; charset=utf-8", rid)
        STATS.completed += 1
        return
    if kind == "garbage":
        await _send_whole(send, 200, _GARBAGE, request_id=rid)
        STATS.completed += 1
        return
    if kind in ("error-key", "error-key-escaped"):
        await _send_whole(send, 401, _quoting_error(ex, escaped=kind == "error-key-escaped"))
        STATS.completed += 1
        return
    if _slowed(behaviour) and not await ex.pause(behaviour.slow_s):
        STATS.cancelled += 1
        return

    prompt_tokens = _prompt_tokens(payload, chat)
    description = (
        ex.describe(payload) if chat else ex.describe(payload, prompt=payload.get("prompt"))
    )
    base = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-standin-{n}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model if isinstance(model, str) else "standin-echo",
        "system_fingerprint": "fp_standin",
    }
    if payload.get("stream") is True:
        stream_options = payload.get("stream_options")
        include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage")
        await _stream(
            ex, send, base, behaviour, description, prompt_tokens, chat, include_usage, rid
        )
        return

    content = orjson.dumps(description).decode()
    if chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    else:
        choice = {"index": 0, "text": content, "logprobs": None, "finish_reason": "stop"}
    body = {**base, "choices": [choice], "usage": _usage(prompt_tokens, behaviour.chunks)}
    await _send_whole(send, 200, orjson.dumps(body), request_id=rid)
    STATS.completed += 1


async def _stream(
    ex: _Exchange,
    send: Send,
    base: dict[str, Any],
    behaviour: Behaviour,
    description: dict[str, Any],
    prompt_tokens: int,
    chat: bool,
    include_usage: Any,
    rid: bytes,
) -> None:
    if chat:
        base["object"] = "chat.completion.chunk"
    kind = behaviour.kind
    include_usage = include_usage and kind != "no-usage"
    if include_usage:
        base["usage"] = None
    count = BREAK_AFTER if kind in ("stream-break", "stream-no-finish") else behaviour.chunks
    if kind == "stream-error-key":
        count = 2

    def frame(choice: dict[str, Any] | None, **extra: Any) -> bytes:
        event = {**base, "choices": [choice] if choice is not None else [], **extra}
        return b"data: " + orjson.dumps(event) + b"\n\n"

    def piece(text: str, finish: str | None = None, first: bool = False) -> dict[str, Any]:
        if chat:
            delta: dict[str, Any] = {"content": text}
            if first:
                delta = {"role": "assistant", "content": text, "refusal": None}
            elif finish is not None:
                delta = {}
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_SSE_HEADERS, (b"x-request-id", rid)],
        }
    )
    if kind == "stream-garbage":
        await send({"type": "http.response.body", "body": _GARBAGE_PAGE, "more_body": False})
        STATS.completed += 1
        return
    STATS.open_streams += 1
    try:
        await send(
            {
                "type": "http.response.body",
                "body": frame(piece("", first=True), standin=description),
                "more_body": True,
            }
        )
        for i in range(1, count + 1):
            if not await ex.pause(behaviour.gap_s):
                STATS.cancelled += 1
                return
            await send(
                {"type": "http.response.body", "body": frame(piece(f"{i};")), "more_body": True}
            )
        if kind == "stream-break":
            STATS.completed += 1
            _quiet_deliberate_breaks()
            raise _StreamBroken
        if kind in ("stream-no-finish", "stream-error-key"):
            last = b"data: " + _quoting_error(ex) + b"\n\n" if kind == "stream-error-key" else b""
            await send({"type": "http.response.body", "body": last, "more_body": False})
            STATS.completed += 1
            return
        tail = frame(piece("", finish="stop"))
        if include_usage:
            tail += frame(None, usage=_usage(prompt_tokens, count))
        if kind != "no-done":
            tail += _DONE
        if ex.gone.is_set():
            STATS.cancelled += 1
            return
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        STATS.completed += 1
    finally:
        STATS.open_streams -= 1


def _vector(item: Any, dims: int) -> list[float]:
    digest = hashlib.shake_256(orjson.dumps(item)).digest(4 * dims)
    return [round(word / 2147483648.0 - 1.0, 6) for (word,) in struct.iter_unpack("<I", digest)]


async def _embeddings(ex: _Exchange, payload: dict[str, Any], send: Send, n: int) -> None:
    model = payload.get("model")
    behaviour = behaviour_for(model) if isinstance(model, str) else _ECHO
    # Errors behave as for chat; stream-only behaviours are plain echoes here.
    if behaviour.kind in ("error-400", "error-429", "error-500-plain", "garbage", "error-context"):
        await _generate(ex, payload, send, n, chat=True)
        return
    if _slowed(behaviour) and not await ex.pause(behaviour.slow_s):
        STATS.cancelled += 1
        return
    raw = payload.get("input")
    if raw is None:
        await _send_whole(
            send, 400, _error_body("'input' is required", "invalid_request_error", None)
        )
        STATS.completed += 1
        return
    items = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    dims = payload.get("dimensions")
    dims = dims if isinstance(dims, int) and 0 < dims <= 4096 else 8
    as_base64 = payload.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(items):
        vector = _vector(item, dims)
        embedding: Any = vector
        if as_base64:
            embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = _prompt_tokens(
        {"model": model, "prompt": [i for i in items if isinstance(i, str)]}, False
    )
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "standin": ex.describe(payload, input=raw),
    }
    await _send_whole(send, 200, orjson.dumps(body), request_id=b"req_standin_%d" % n)
    STATS.completed += 1


async def _models(ex: _Exchange, send: Send, n: int) -> None:
    body = {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "standin"}
            for name in MODELS
        ],
        "standin": ex.describe({}),
    }
    await _send_whole(send, 200, orjson.dumps(body), request_id=b"req_standin_%d" % n)
    STATS.completed += 1


_POST_HANDLERS = {
    "/v1/chat/completions": _chat,
    "/v1/completions": _completions,
    "/v1/embeddings": _embeddings,
}
_CHAT_SUFFIXES = ("/chat/completions", "/convert")
_ALLOWED = {path: b"POST" for path in _POST_HANDLERS} | {
    "/v1/models": b"GET",
    "/_standin/stats": b"GET",
    "/_standin/reset": b"POST",
    "/_standin/requests": b"GET",
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point (served without the lifespan protocol: nothing to set up)."""
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    method: str = scope["method"]
    allowed = _ALLOWED.get(path)
    if allowed is None and path.endswith(_CHAT_SUFFIXES):
        path, allowed = "/v1/chat/completions", b"POST"
    if allowed is None:
        body = _error_body(f"stand-in has no {path}", "invalid_request_error", "unknown_url")
        await _send_whole(send, 404, body)
        return
    if method.encode() != allowed:
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [(b"allow", allowed), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/_standin/stats":
        await _send_whole(send, 200, STATS.as_json())
        return
    if path == "/_standin/requests":
        await _send_whole(send, 200, orjson.dumps(list(RECENT)))
        return
    if path == "/_standin/reset":
        STATS.reset()
        RECENT.clear()
        await _send_whole(send, 200, STATS.as_json())
        return

    STATS.started += 1
    n = next(_ids)
    ex = _Exchange(scope, receive)
    RECENT.append(
        {
            "path": ex.path,
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in ex.headers.items()},
        }
    )
    try:
        if not await ex.read_body():
            STATS.cancelled += 1
            return
        if path == "/v1/models":
            await _models(ex, send, n)
            return
        try:
            payload = orjson.loads(ex.body)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            body = _error_body("stand-in wants a JSON object", "invalid_request_error", None)
            await _send_whole(send, 400, body)
            STATS.completed += 1
            return
        await _POST_HANDLERS[path](ex, payload, send, n)
    finally:
        ex.close()


def main(argv: list[str] | None = None) -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="OpenAI-compatible upstream stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    serve(f"{__file__}:app", host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
