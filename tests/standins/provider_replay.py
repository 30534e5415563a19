"""A provider stand-in that replays one recorded transcript over real HTTP (Granian, loopback).

Run it with ``python tests/standins/provider_replay.py --host 127.0.0.1 --port 9200``.

The conformance suite (tests/conformance/README.md has the transcript format) loads a transcript
with ``POST /_replay/load`` (``{"transcript": {...}}``, or ``{"transcript": null}`` when no
request may come), then drives fd2. Every other request is compared with the transcript's
``request`` (method, path and query, the listed headers, the JSON body) and answered with its
``response``, byte for byte: streams in pieces of ``split_every`` bytes, each flushed on its own,
and ``cut`` aborts the connection after the last piece; ``delay_s`` waits before answering and
``gap_s`` between pieces (default 0.5 ms). ``GET /_replay/result`` returns what was received
(``requests``: how many; ``mismatches``: what differed, readable; ``gone``: answers stopped
because the client went away first; ``completed``); the test fails on any mismatch.
``GET /_replay/health`` answers 200. A transcript of several calls holds `exchanges` (a list
of `request`/`response`) instead: each call is answered from the exchange it matches.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

if __file__.rpartition("/")[0] not in sys.path:  # Granian's workers import this file by path
    sys.path.insert(0, __file__.rpartition("/")[0])
from serving import read_body, send_json  # beside this script

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_SPLIT = 7
PIECE_GAP_S = 0.0005
"""A pause between pieces, so that each reaches the gateway as a read of its own."""
ANY = "<any>"
PATTERN = "<re>"
"""A header value `<re>` + a regular expression: the sent value must match it whole."""


class _Cut(Exception):
    """Raised inside the app to make Granian abort a response mid-body."""


class _State:
    def __init__(self) -> None:
        self.transcript: dict[str, Any] | None = None
        self.requests = 0
        self.mismatches: list[str] = []
        self.gone = 0
        self.completed = 0

    def load(self, transcript: dict[str, Any] | None) -> None:
        self.transcript = transcript
        self.requests = 0
        self.mismatches = []
        self.gone = 0
        self.completed = 0


STATE = _State()


def compare(
    expected: dict[str, Any], method: str, path: str, headers: dict[str, str], body: bytes
) -> list[str]:
    """What differs between a request and the transcript's `request` (empty: none)."""
    found: list[str] = []
    if method != expected.get("method", "POST"):
        found.append(f"method: sent {method}, transcript {expected.get('method')}")
    if path != expected["path"]:
        found.append(f"path: sent {path!r}, transcript {expected['path']!r}")
    for name, value in (expected.get("headers") or {}).items():
        sent = headers.get(name.lower())
        if sent is None:
            found.append(f"header {name}: not sent (transcript {value!r})")
        elif value.startswith(PATTERN):
            if re.fullmatch(value[len(PATTERN) :], sent) is None:
                found.append(f"header {name}: sent {sent!r}, not matching {value!r}")
        elif value != ANY and sent != value:
            found.append(f"header {name}: sent {sent!r}, transcript {value!r}")
    want = expected.get("json")
    if want is None:
        if body:
            found.append(f"body: sent {len(body)} bytes, transcript none")
        return found
    try:
        got = orjson.loads(body)
    except orjson.JSONDecodeError:
        found.append(f"body: not JSON: {body[:200]!r}")
        return found
    found += [f"body{where}" for where in _diff(want, got, "")]
    return found


def _diff(want: Any, got: Any, where: str) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = [
            f"{where}.{key}: missing (transcript {_short(want[key])})"
            for key in want.keys() - got.keys()
        ]
        out += [
            f"{where}.{key}: sent {_short(got[key])}, not in the transcript"
            for key in got.keys() - want.keys()
        ]
        for key in want.keys() & got.keys():
            out += _diff(want[key], got[key], f"{where}.{key}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [
            d
            for i, (w, g) in enumerate(zip(want, got, strict=True))
            for d in _diff(w, g, f"{where}[{i}]")
        ]
    if want != got or type(want) is not type(got):
        return [f"{where}: sent {_short(got)}, transcript {_short(want)}"]
    return []


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 200 else text[:200] + "..."


def answer_bytes(response: dict[str, Any]) -> tuple[bytes, str, bool]:
    """The body of a transcript's response, its default content type, and whether it streams."""
    if "json" in response:
        return orjson.dumps(response["json"]), "application/json", False
    if "events" in response:
        out = b""
        for event in response["events"]:
            if event.get("event"):
                out += b"event: " + event["event"].encode() + b"\n"
            data = event.get("data")
            text = data.encode() if isinstance(data, str) else orjson.dumps(data)
            out += b"data: " + text + b"\n\n"
        return out + response.get("tail", "").encode(), "text/event-stream", True
    if "body_b64" in response:
        return base64.b64decode(response["body_b64"]), "application/vnd.amazon.eventstream", True
    text = response.get("body", "").encode()
    return text + response.get("tail", "").encode(), "text/plain", "split_every" in response


async def _replay(send: Send, response: dict[str, Any], gone: asyncio.Event) -> None:
    """Sends `response`; stops (counted in `gone`) when the client has gone first."""
    body, content_type, streamed = answer_bytes(response)
    headers = [(k.lower().encode(), v.encode()) for k, v in response.get("headers", [])]
    if not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", content_type.encode()))
    if response.get("delay_s") and await _gone_within(gone, float(response["delay_s"])):
        STATE.gone += 1
        return
    status = response.get("status", 200)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if not streamed and not response.get("cut"):
        await send({"type": "http.response.body", "body": body})
        STATE.completed += 1
        return
    step = int(response.get("split_every", DEFAULT_SPLIT))
    gap = float(response.get("gap_s", PIECE_GAP_S))
    for start in range(0, len(body), step):
        piece = body[start : start + step]
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        if await _gone_within(gone, gap):
            STATE.gone += 1
            return
    if response.get("cut"):
        raise _Cut
    await send({"type": "http.response.body", "body": b""})
    STATE.completed += 1


async def _gone_within(gone: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(gone.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _watch(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def app(scope: Message, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    method = scope["method"]
    if path == "/_replay/health":
        await send_json(send, 200, {"ok": True})
        return
    if path == "/_replay/load" and method == "POST":
        STATE.load(orjson.loads(await read_body(receive)).get("transcript"))
        await send_json(send, 200, {"ok": True})
        return
    if path == "/_replay/result":
        result = {
            "requests": STATE.requests,
            "mismatches": STATE.mismatches,
            "gone": STATE.gone,
            "completed": STATE.completed,
        }
        await send_json(send, 200, result)
        return
    body = await read_body(receive)
    raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    full = f"{raw_path}?{query}" if query else raw_path
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    STATE.requests += 1
    transcript = STATE.transcript
    if transcript is None:
        STATE.mismatches.append(f"unexpected request {method} {full}: no call was expected")
        await send_json(send, 500, {"error": {"message": "stand-in: no request expected"}})
        return
    exchange = _exchange_for(transcript, method, full, headers, body)
    gone = asyncio.Event()
    watcher = asyncio.create_task(_watch(receive, gone))
    try:
        await _replay(send, exchange["response"], gone)
    finally:
        watcher.cancel()


def _exchange_for(
    transcript: dict[str, Any], method: str, full: str, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    """The exchange a request is answered from, its differences recorded. A transcript holds one
    `request`/`response`, or `exchanges` (several calls for one client request, e.g. one per
    embedding input): each is used once, matched by content since concurrent calls come in any
    order."""
    exchanges = transcript.get("exchanges")
    if exchanges is None:
        if STATE.requests > 1:
            STATE.mismatches.append(f"request {STATE.requests}: {method} {full}: only one expected")
        STATE.mismatches += compare(transcript["request"], method, full, headers, body)
        return transcript
    unused = [e for e in exchanges if not e.get("_used")]
    if not unused:
        STATE.mismatches.append(f"request {STATE.requests}: {method} {full}: no exchange left")
        return exchanges[-1]
    for exchange in unused:
        if not compare(exchange["request"], method, full, headers, body):
            exchange["_used"] = True
            return exchange
    STATE.mismatches += compare(unused[0]["request"], method, full, headers, body)
    unused[0]["_used"] = True
    return unused[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args()
    from serving import serve

    serve(f"{__file__}:app", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
