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


@pytest.mark.parametrize("case", TEXTS)
def test_native_scan(benchmark: Any, case: str) -> None:
    text = TEXTS[case]
    found = SCANNER.scan(text)
    assert (len(found) > 0) == (case != "no-pii")
    benchmark.group = "pii scan 1 MiB"
    benchmark(SCANNER.scan, text)
    benchmark.extra_info["MB/s"] = round(len(text) / benchmark.stats.stats.mean / 1e6, 1)


def test_python_redactor_sparse(benchmark: Any) -> None:
    text = TEXTS["sparse"]
    benchmark.group = "pii scan 1 MiB"
    benchmark(lambda: REDACTOR.text(text, Found(), block=False))
    benchmark.extra_info["MB/s"] = round(len(text) / benchmark.stats.stats.mean / 1e6, 1)


def test_python_re_two_kinds(benchmark: Any) -> None:
    text = TEXTS["sparse"]
    benchmark.group = "pii scan 1 MiB"
    benchmark(lambda: _PYTHON.findall(text))
    benchmark.extra_info["MB/s"] = round(len(text) / benchmark.stats.stats.mean / 1e6, 1)
