"""The translation-cost section's arithmetic (bench/translation.py): per-round differences of the
translated modules against the passthrough, CPU per chunk, summed errors, the report lines."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import translation


def _closed(cpu: float, errors: int = 0) -> dict[str, Any]:
    return {"cpu_us_per_request": cpu, "errors": errors, "error_kinds": {}, "sent_in_all": 10}


def _stream(ttft_ms: float, gap_ms: float, cpu_per_stream: float) -> dict[str, Any]:
    return {
        "ttft_ms": {"count": 4, "p50": ttft_ms},
        "gap_ms": {"count": 252, "p50": gap_ms},
        "chunks": 256,  # 64 per complete stream
        "cpu_us_per_request": cpu_per_stream,
        "errors": 0,
        "error_kinds": {},
    }


def _run(round_no: int, scenario: str, target: str, result: dict[str, Any]) -> dict[str, Any]:
    mode = scenario.split()[0]
    return {"round": round_no, "scenario": scenario, "mode": mode, "target": target,
            "result": result}  # fmt: skip


def _runs() -> list[dict[str, Any]]:
    return [
        _run(1, "closed c=1", "passthrough", _closed(500)),
        _run(1, "closed c=1", "anthropic", _closed(530, errors=1)),
        _run(2, "closed c=1", "anthropic", _closed(700)),
        _run(2, "closed c=1", "passthrough", _closed(690)),
        _run(3, "closed c=1", "passthrough", _closed(400)),
        _run(3, "closed c=1", "anthropic", _closed(420)),
        _run(1, "stream c=1", "passthrough", _stream(51.0, 20.0, 6400)),
        _run(1, "stream c=1", "anthropic", _stream(51.5, 20.01, 7040)),
    ]


def test_added_is_per_round_then_median() -> None:
    summary = translation.summarize(_runs())
    closed = next(r for r in summary["rows"] if r["scenario"] == "closed c=1")
    cpu = closed["figures"]["cpu_us_per_request"]
    assert cpu["added"] == {"min": 10, "median": 20, "max": 30}
    assert cpu["passthrough"]["median"] == 500
    assert closed["errors"] == {"passthrough": 0, "anthropic": 1}
    assert translation.errors(summary) == 1


def test_stream_figures_in_microseconds_and_cpu_per_chunk() -> None:
    summary = translation.summarize(_runs())
    stream = next(r for r in summary["rows"] if r["scenario"] == "stream c=1")["figures"]
    assert stream["ttft_p50_us"]["added"]["median"] == pytest.approx(500)
    assert stream["gap_p50_us"]["added"]["median"] == pytest.approx(10)
    # (7040 - 6400) µs per stream over 64 chunks per stream
    assert stream["cpu_us_per_chunk"]["added"]["median"] == pytest.approx(10)
    # A case that was not measured has no figure rather than a zero.
    unmeasured = next(r for r in summary["rows"] if r["scenario"] == "stream c=16")
    assert unmeasured["figures"]["gap_p50_us"]["added"] is None


def test_report_section() -> None:
    lines = translation.markdown(translation.summarize(_runs()))
    text = "\n".join(lines)
    assert "## Translation cost" in text
    assert "| closed c=1 | CPU µs/request | 500.0 (400.0 to 690.0) |" in text
    assert "**0 / 1**" in text
    assert translation.markdown(None) == []


def test_scheduler_cpu_count_of_this_process() -> None:
    before = translation.cpu_ns([os.getpid()])
    assert before > 0
    # The kernel brings a running thread's count up to date at its scheduler ticks and switches,
    # not on every read: work until it moves (a few ms), bounded.
    deadline = time.monotonic() + 5
    while translation.cpu_ns([os.getpid()]) == before and time.monotonic() < deadline:
        sum(range(200_000))
    assert translation.cpu_ns([os.getpid()]) > before
    result = {"sent_in_all": 4, "cpu_us_per_request": 2500.0}
    translation.precise_cpu(result, 8_000_000)
    assert result == {"sent_in_all": 4, "cpu_us_per_request": 2000.0,
                      "cpu_us_per_request_ticks": 2500.0}  # fmt: skip
