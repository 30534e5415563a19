"""PII scanning: fd2._native.PiiScanner in MB/s over chat-like prose (1 MiB), with no PII, with
sparse PII (one value per ~2 KB) and with dense PII (one per ~100 bytes); the Python redactor
(scan + replace) on the sparse text; and, for scale, a Python `re` pass for only two of the eight
kinds (e-mail, 13-19 digit runs, no checksum). Run with `make bench-micro`."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fd2._native import PII_KINDS, PiiScanner
from fd2.privacy.redactor import Found, Redactor
from fd2.privacy.stream import StreamRedactor

SCANNER = PiiScanner(PII_KINDS)
REDACTOR = Redactor(dict.fromkeys(PII_KINDS, "mask"), None)
_PROSE = (
    "The quarterly report shows revenue grew by 12% over the period, driven by new accounts "
    "in the north-east region; the team expects the trend to continue into next year. "
)
_PII = (
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "+44 20 7946 0958",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "192.168.10.1",
    "2001:db8::8a2e:370:7334",
    "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
)
SIZE = 1 << 20


def _text(every: int) -> str:
    parts: list[str] = []
    size = 0
    index = 0
    while size < SIZE:
        chunk = _PROSE
        if every and index % every == 0:
            chunk += f"Contact: {_PII[index // every % len(_PII)]}. "
        parts.append(chunk)
        size += len(chunk)
        index += 1
    return "".join(parts)[:SIZE]


TEXTS = {"no-pii": _text(0), "sparse": _text(12), "dense": _text(1)}
_PYTHON = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|\b(?:\d[ -]?){13,19}\b")


def _per_second(benchmark: Any, name: str, amount: float) -> None:
    """`amount` per second of the measured mean, shown with the figures; nothing when the run
    measured nothing (`--benchmark-disable`, as the smoke run does)."""
    if benchmark.stats is not None:
        benchmark.extra_info[name] = round(amount / benchmark.stats.stats.mean, 1)


def _per_unit(benchmark: Any, name: str, units: int) -> None:
    """Microseconds of the measured mean per unit of work; nothing when nothing was measured."""
    if benchmark.stats is not None:
        benchmark.extra_info[name] = round(benchmark.stats.stats.mean / units * 1e6, 2)


@pytest.mark.parametrize("case", TEXTS)
def test_native_scan(benchmark: Any, case: str) -> None:
    text = TEXTS[case]
    found = SCANNER.scan(text)
    assert (len(found) > 0) == (case != "no-pii")
    benchmark.group = "pii scan 1 MiB"
    benchmark(SCANNER.scan, text)
    _per_second(benchmark, "MB/s", len(text) / 1e6)


def test_python_redactor_sparse(benchmark: Any) -> None:
    text = TEXTS["sparse"]
    benchmark.group = "pii scan 1 MiB"
    benchmark(lambda: REDACTOR.text(text, Found(), block=False))
    _per_second(benchmark, "MB/s", len(text) / 1e6)


def test_python_re_two_kinds(benchmark: Any) -> None:
    text = TEXTS["sparse"]
    benchmark.group = "pii scan 1 MiB"
    benchmark(lambda: _PYTHON.findall(text))
    _per_second(benchmark, "MB/s", len(text) / 1e6)


def _stream(events: int) -> bytes:
    base = b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    parts = [
        base + b'"choices":[{"index":0,"delta":{"content":" word%d"},"finish_reason":null}]}' % i
        for i in range(events)
    ]
    parts.append(base + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    return b"".join(b"data: " + p + b"\n\n" for p in parts) + b"data: [DONE]\n\n"


STREAM = _stream(500)
EVENT_CHUNKS = [event + b"\n\n" for event in STREAM.split(b"\n\n") if event]


def test_stream_redactor_per_event(benchmark: Any) -> None:
    """A 500-event chat stream fed event by event (as an upstream sends it): the cost per event
    of holding back, scanning and re-encoding the content."""

    def run() -> bytes:
        stream = StreamRedactor(REDACTOR)
        return b"".join(stream.feed(chunk) for chunk in EVENT_CHUNKS) + stream.finish()

    assert b"word499" in run()
    benchmark.group = "pii stream"
    benchmark(run)
    _per_unit(benchmark, "µs/event", 501)
