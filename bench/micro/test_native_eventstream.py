"""AWS event stream decoding and SigV4 signing, the per-stream and per-request costs of Bedrock.

Decoding: fd2._native.EventStreamDecoder against botocore's pure-Python EventStreamBuffer (the
reference implementation AWS ships) on a ConverseStream of 64 text deltas plus its start, stop
and metadata events: one whole event per upstream read, the same bytes cut every 97 bytes, and a
single 1 MiB message. Both decoders' outputs are checked before anything is timed; `frame` adds
the seam's work (StreamEvents, exception checks). `test_decoder_throughput` prints MB/s.

Signing: one Bedrock chat call signed by fd2's signer (botocore's SigV4Auth steps, at the call's
own time), against botocore's own `add_auth` on the same request; `test_signing_cost` prints us.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]

from fd2._native import EventStreamDecoder
from fd2_inference.providers.base import ProviderSettings
from fd2_inference.providers.bedrock import BedrockProvider
from fd2_inference.providers.eventstream import frame_eventstream

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "modules" / "fd2_inference"))
from bedrock_frames import event, message  # the tests' frame writer

EVENTS = [event("messageStart", {"p": "abcdefghij", "role": "assistant"})]
EVENTS += [
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f"token{i} "}, "p": "ab"})
    for i in range(64)
]
EVENTS += [
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event("messageStop", {"stopReason": "end_turn"}),
    event("metadata", {"usage": {"inputTokens": 10, "outputTokens": 64, "totalTokens": 74}}),
]
STREAM = b"".join(EVENTS)
BIG = message({":event-type": "chunk", ":message-type": "event"}, b"x" * (1 << 20))
CASES: dict[str, list[bytes]] = {
    "67-events-whole": EVENTS,
    "67-events-split-97": [STREAM[i : i + 97] for i in range(0, len(STREAM), 97)],
    "1MiB-message-64KiB-reads": [BIG[i : i + 65536] for i in range(0, len(BIG), 65536)],
}


def native(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    decoder = EventStreamDecoder()
    out = [
        (str(headers[":event-type"]), payload)
        for chunk in chunks
        for headers, payload in decoder.feed(chunk)
    ]
    decoder.finish()
    return out


def frame(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    deframer = frame_eventstream()
    out = [(str(e.name), e.data) for chunk in chunks for e in deframer.feed(chunk)]
    deframer.finish()
    return out


def botocore_buffer(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    buffer = EventStreamBuffer()
    out = []
    for chunk in chunks:
        buffer.add_data(chunk)
        out += [(m.headers[":event-type"], m.payload) for m in buffer]
    return out


DECODERS: dict[str, Callable[[list[bytes]], list[tuple[str, bytes]]]] = {
    "native": native,
    "frame": frame,
    "botocore": botocore_buffer,
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", DECODERS)
def test_eventstream_decode(benchmark: Any, case: str, impl: str) -> None:
    chunks = CASES[case]
    decode = DECODERS[impl]
    assert decode(chunks) == botocore_buffer(chunks)
    benchmark.group = f"eventstream {case}"
    benchmark.extra_info["bytes"] = sum(len(c) for c in chunks)
    benchmark(decode, chunks)


def _median_s(work: Callable[[], object], rounds: int) -> float:
    for _ in range(5):
        work()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_decoder_throughput() -> None:
    """MB/s of each decoder per case (printed for the report; native must beat botocore)."""
    for case, chunks in CASES.items():
        size = sum(len(c) for c in chunks)
        rates = {
            impl: size / _median_s(lambda d=decode, c=chunks: d(c), 50) / 1e6  # type: ignore[misc]
            for impl, decode in DECODERS.items()
        }
        print(f"\n{case}: " + ", ".join(f"{impl} {rate:.0f} MB/s" for impl, rate in rates.items()))
        assert rates["native"] > rates["botocore"]


# --- signing

CREDENTIALS = {
    "aws_access_key_id": "AKIDBENCH0000000001",
    "aws_secret_access_key": "bench-secret-key",
    "aws_session_token": "bench-session-token",
}
PROVIDER = BedrockProvider(
    ProviderSettings(name="bedrock", base_url="", region="us-east-1", credentials=CREDENTIALS)
)
CHAT = {
    "model": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "max_tokens": 50,
}
CALL = PROVIDER.chat_call(CHAT, stream=False)
SIGNER: Any = PROVIDER._signer  # the signer alone, for its own cost


def fd2_sign() -> object:
    return SIGNER.sign("POST", CALL.path, [("content-type", "application/json")], CALL.body)


def botocore_add_auth() -> object:
    request = AWSRequest(
        method="POST",
        url="https://bedrock-runtime.us-east-1.amazonaws.com" + CALL.path,
        data=CALL.body,
        headers={"content-type": "application/json"},
    )
    SigV4Auth(
        Credentials(
            CREDENTIALS["aws_access_key_id"],
            CREDENTIALS["aws_secret_access_key"],
            CREDENTIALS["aws_session_token"],
        ),
        "bedrock",
        "us-east-1",
    ).add_auth(request)
    return request


def chat_call() -> object:
    return PROVIDER.chat_call(CHAT, stream=False)


SIGNING: dict[str, Callable[[], object]] = {
    "fd2-sign": fd2_sign,
    "botocore-add-auth": botocore_add_auth,
    "chat-call-with-signing": chat_call,
}


@pytest.mark.parametrize("impl", SIGNING)
def test_sigv4(benchmark: Any, impl: str) -> None:
    benchmark.group = "sigv4 per request"
    benchmark(SIGNING[impl])


def test_signing_cost() -> None:
    """CPU us per signature and per whole chat call (printed for the report)."""
    figures = {}
    for impl, work in SIGNING.items():
        for _ in range(200):
            work()
        start = time.process_time_ns()
        for _ in range(2000):
            work()
        figures[impl] = (time.process_time_ns() - start) / 2000 / 1000
    print("\nsigv4: " + ", ".join(f"{impl} {us:.1f} us" for impl, us in figures.items()))
    assert figures["fd2-sign"] < figures["botocore-add-auth"] * 1.5
    assert orjson.loads(CALL.body or b"")["inferenceConfig"] == {"maxTokens": 50}
