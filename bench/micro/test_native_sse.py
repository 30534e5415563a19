"""SSE relay per stream: fd2._native.SseFramer(openai=True) against the best pure-Python relay.

A stream is 64 OpenAI chat chunks (plus the final, usage and [DONE] events), relayed with usage /
finish reason / model read out. Cases: one whole event per upstream read (the common case), the
same bytes cut every 97 bytes (events split across reads), and CRLF line ends; plus one 128 KB
event. Both relays' outputs are checked before anything is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from python_sse import PythonSseRelay

from fd2.serving.sse import SseFramer


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunk(i: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": f"token{i} "}, "finish_reason": None}],
        "usage": None,
    }


EVENTS = [_event(_chunk(i)) for i in range(64)]
EVENTS.append(
    _event({**_chunk(64), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
)
USAGE = {"prompt_tokens": 10, "completion_tokens": 64, "total_tokens": 74}
EVENTS.append(_event({**_chunk(65), "choices": [], "usage": USAGE}))
EVENTS.append(b"data: [DONE]\n\n")
STREAM = b"".join(EVENTS)
CASES: dict[str, list[bytes]] = {
    "64-chunk-whole-events": EVENTS,
    "64-chunk-split-97": [STREAM[i : i + 97] for i in range(0, len(STREAM), 97)],
    "64-chunk-crlf": [event.replace(b"\n", b"\r\n") for event in EVENTS],
    "128KB-event": [_event({**_chunk(0), "pad": "x" * (128 * 1024)}), b"data: [DONE]\n\n"],
}


def native_relay(chunks: list[bytes]) -> tuple[bytes, Any]:
    framer = SseFramer(openai=True)
    out = b"".join([framer.feed(chunk) for chunk in chunks])
    framer.finish()
    return out, (framer.usage, framer.finish_reason, framer.model, framer.done)


def python_relay(chunks: list[bytes]) -> tuple[bytes, Any]:
    relay = PythonSseRelay()
    out = b"".join([relay.feed(chunk) for chunk in chunks])
    usage = relay.usage
    facts = (
        None if usage is None else tuple(usage[k] for k in USAGE),
        relay.finish_reason,
        relay.model,
        relay.done,
    )
    return out, facts


RELAYS: dict[str, Callable[[list[bytes]], tuple[bytes, Any]]] = {
    "native": native_relay,
    "python": python_relay,
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", RELAYS)
def test_sse_relay(benchmark: Any, case: str, impl: str) -> None:
    chunks = CASES[case]
    relay = RELAYS[impl]
    out, facts = relay(chunks)
    assert out == b"".join(chunks)
    want_usage = (10, 64, 74) if case.startswith("64") else None
    assert facts == (want_usage, "stop" if want_usage else None, "gpt-4o-mini", True)
    benchmark.group = f"sse {case}"
    benchmark(relay, chunks)
