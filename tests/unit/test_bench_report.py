"""The benchmark report's arithmetic: per-round differences, summed errors, flags, ratios."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import report


def _result(rps: float, p50: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {
        "rps": rps,
        "latency_ms": {"count": 10, "p50": p50, "p95": p99, "p99": p99},
        "cpu_us_per_request": 100.0,
        "errors": errors,
        "error_kinds": {"status 502": errors} if errors else {},
    }


def _run(round_no: int, target: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"round": round_no, "scenario": "closed c=1", "mode": "closed", "target": target,
            "result": result}  # fmt: skip


def _data() -> dict[str, Any]:
    runs = [
        _run(1, "direct", _result(1000, 1.0, 2.0)),
        _run(1, "fd2", _result(500, 1.5, 4.0, errors=2)),
        _run(1, "peer", _result(100, 9.0, 20.0)),
        _run(2, "direct", _result(1000, 3.0, 6.0)),
        _run(2, "fd2", _result(950, 3.2, 6.5)),
        _run(2, "peer", _result(50, 9.0, 20.0)),
        _run(3, "direct", _result(1000, 2.0, 2.0)),
        _run(3, "fd2", _result(400, 3.0, 3.0, errors=1)),
        _run(3, "peer", _result(40, 9.0, 20.0)),
    ]
    return {"ceiling": {"rps": 1000.0}, "runs": runs}


def _row(summary: dict[str, Any], target: str) -> dict[str, Any]:
    return next(row for row in summary["rows"] if row["target"] == target)


def test_added_latency_is_the_median_of_per_round_differences() -> None:
    fd2 = _row(report.summarize(_data()), "fd2")
    # Per round: 0.5, 0.2, 1.0 -> median 0.2 (not median(fd2) - median(direct) = 3.0 - 2.0).
    assert fd2["added"]["p50"] == pytest.approx({"min": 0.2, "median": 0.5, "max": 1.0})
    assert fd2["p50"] == {"min": 1.5, "median": 3.0, "max": 3.2}


def test_errors_are_summed_over_rounds_with_their_kinds() -> None:
    fd2 = _row(report.summarize(_data()), "fd2")
    assert fd2["errors"] == 3
    assert fd2["error_kinds"] == {"status 502": 3}
    assert "**3** (status 502: 3)" in report.errors_cell(fd2)


def test_a_result_near_the_stand_in_ceiling_is_flagged() -> None:
    summary = report.summarize(_data())
    assert _row(summary, "fd2")["limited_by_standin"] is False  # median 500 of a 1000 ceiling
    data = _data()
    for run in data["runs"]:
        if run["target"] == "fd2":
            run["result"]["rps"] = 950
    assert _row(report.summarize(data), "fd2")["limited_by_standin"] is True


def test_peer_ratio_is_fd2_over_peer_per_round() -> None:
    peer = _row(report.summarize(_data()), "peer")
    # Per round: 500/100, 950/50, 400/40.
    assert peer["fd2_ratio"] == {"min": 5.0, "median": 10.0, "max": 19.0}
    # CPU per request: 100 µs for both in every round.
    assert peer["fd2_cpu_ratio"] == {"min": 1.0, "median": 1.0, "max": 1.0}
    assert "fd2_ttft_minus" not in peer


def _stream_run(round_no: int, target: str, ttft_p50: float) -> dict[str, Any]:
    result = {
        "ttft_ms": {"count": 100, "p50": ttft_p50, "p99": ttft_p50 + 1},
        "gap_ms": {"count": 100, "p50": 20.0, "p99": 21.0},
        "cpu_us_per_request": 300.0,
        "errors": 0,
        "error_kinds": {},
    }
    return {"round": round_no, "scenario": "stream c=1", "mode": "stream", "target": target,
            "result": result}  # fmt: skip


def test_streams_are_compared_by_the_difference_of_first_tokens_per_round() -> None:
    # First tokens include the stand-in's 50 ms: their ratio says nothing (~1.0), the
    # difference is what fd2 adds over the anchor.
    runs = [
        _stream_run(1, "direct", 50.0),
        _stream_run(1, "fd2", 50.6),
        _stream_run(1, "floor-lean", 50.5),
        _stream_run(2, "direct", 50.1),
        _stream_run(2, "fd2", 50.9),
        _stream_run(2, "floor-lean", 50.4),
        _stream_run(3, "direct", 50.0),
        _stream_run(3, "fd2", 50.5),
        _stream_run(3, "floor-lean", 50.7),
    ]
    summary = report.summarize({"ceiling": {"rps": 1000.0}, "runs": runs})
    floor = _row(summary, "floor-lean")
    assert floor["fd2_ttft_minus"] == pytest.approx({"min": -0.2, "median": 0.1, "max": 0.5})
    assert "fd2_ratio" not in floor
    assert "fd2_ttft_minus" not in _row(summary, "fd2")
    table = "\n".join(report._against(summary["rows"]))
    assert "| stream c=1 | floor-lean | +0.100 (-0.200 to +0.500) |" in table
    assert "req/s" not in table  # no whole-answer rows in this run


def test_the_idle_cores_settings_are_stated_when_recorded() -> None:
    idle = {"driver": "haltpoll", "governor": "haltpoll", "guest_halt_poll_ns": "0"}
    assert report._idle_text(idle) == (
        "; idle cores: haltpoll driver, haltpoll governor, guest_halt_poll_ns 0"
    )
    assert report._idle_text(None) == ""  # a report from before they were recorded
