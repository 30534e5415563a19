"""The harness's wide stream shape: 256 streams and more ask the stand-in for fewer chunks further
apart (the tools' core must keep headroom), with the same stream length, and the report says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import pytest

import report
import run
from targets import StreamShape, stream_body


def _settings(*, quick: bool = True, pause_ms: float = 0.0) -> run.Settings:
    args = run.argparse.Namespace(
        smoke=False, quick=quick, rounds=None, duration=None, rate=None, delay_ms=0.0,
        pause_ms=pause_ms, stream_shape=None, wide_stream_shape=None,
    )  # fmt: skip
    return run.settings_for(args)


def test_the_clients_pause_between_answers_is_a_setting_and_off_by_default() -> None:
    assert _settings().pause_ms == 0
    assert _settings(pause_ms=2.0).pause_ms == 2.0
    settings = {"mode": "quick", "rounds": 1, "duration_s": 1, "warmup_s": 0,
                "stream_duration_s": 1, "pause_ms": 2.0}  # fmt: skip
    assert "each client pauses 2.0 ms after an answer" in report._settings_text(settings)
    del settings["pause_ms"]  # a report from before the setting
    assert "pauses" not in report._settings_text(settings)


def test_wide_shape_keeps_the_stream_length_with_a_quarter_of_the_chunks() -> None:
    cfg = _settings()
    assert cfg.wide_shape.length_s() == cfg.shape.length_s()
    assert cfg.wide_shape.ttft_ms == cfg.shape.ttft_ms
    assert cfg.wide_shape.chunks_per_s(512) == cfg.shape.chunks_per_s(512) / 4


def test_512_streams_use_the_wide_shape_and_fewer_streams_the_run_shape() -> None:
    scenarios = {s.name: s for s in _settings().scenarios()}
    wide = StreamShape(50, 16, 80)
    assert scenarios["stream c=512"].shape == wide
    assert scenarios["stream c=512"].ramp_s == wide.length_s()
    assert scenarios["stream c=512 burst"].shape == wide
    assert scenarios["stream c=512 burst"].ramp_s == 0
    assert scenarios["stream c=64"].shape == StreamShape(50, 64, 20)
    assert scenarios["stream c=16"].shape == StreamShape(50, 64, 20)


def test_one_stream_at_a_time_uses_the_first_token_shape() -> None:
    """The same first chunk as the run's shape, fewer chunks: many first tokens per run."""
    cfg = _settings()
    one = {s.name: s for s in cfg.scenarios()}["stream c=1"]
    assert one.shape == cfg.first_token_shape
    assert one.shape.ttft_ms == cfg.shape.ttft_ms
    assert one.shape.length_s() < cfg.shape.length_s() / 5


def test_a_stream_run_lasts_until_its_minimum_of_starts() -> None:
    cfg = _settings(quick=False)  # 4 s stream runs, at least 100 starts
    scenarios = {s.name: s for s in cfg.scenarios()}
    one, sixteen, wide = (
        scenarios["stream c=1"],
        scenarios["stream c=16"],
        scenarios["stream c=512"],
    )
    assert one.min_starts == sixteen.min_starts == 100
    # 100 streams of 0.13 s one after another: 13 s.
    assert run.measured_seconds(one, one.shape, cfg) == pytest.approx(13.0)
    # 16 open at once, each 1.33 s: 100 starts take 8.3 s.
    assert run.measured_seconds(sixteen, sixteen.shape, cfg) == pytest.approx(100 * 1.33 / 16)
    # 512 open at once start 100 streams well within the run's own length.
    assert run.measured_seconds(wide, wide.shape, cfg) == cfg.stream_duration_s
    closed = scenarios["closed c=16"]
    assert run.measured_seconds(closed, cfg.shape, cfg) == cfg.duration_s
    quick = _settings()  # 1.5 s stream runs, at least 40 starts
    one_quick = {s.name: s for s in quick.scenarios()}["stream c=1"]
    assert run.measured_seconds(one_quick, one_quick.shape, quick) == pytest.approx(40 * 0.13)


def test_a_load_without_a_minimum_keeps_the_stream_duration() -> None:
    cfg = _settings()
    plain = run.Scenario("stream c=1", "stream", 1)  # as translation.py's cases are
    assert run.measured_seconds(plain, cfg.shape, cfg) == cfg.stream_duration_s


def test_the_shape_is_asked_in_the_request_metadata() -> None:
    body = json.loads(stream_body("gpt-4o-mini", StreamShape(50, 16, 80)))
    assert body["metadata"] == {"standin_shape": "50,16,80"}
    assert "metadata" not in json.loads(stream_body("gpt-4o-mini"))


def test_the_report_names_a_load_whose_shape_is_not_the_run_s() -> None:
    default = {"ttft_ms": 50, "chunks": 64, "gap_ms": 20}
    rows = [
        {"scenario": "stream c=64", "mode": "stream", "shape": default},
        {"scenario": "stream c=512", "mode": "stream", "shape": {**default, "chunks": 16,
                                                                 "gap_ms": 80}},
    ]  # fmt: skip
    lines = report._other_shapes(rows, default)
    assert len(lines) == 2  # the line and a blank one
    assert lines[0].startswith("- `stream c=512`: first chunk at 50 ms, 16 chunks 80 ms apart")
    assert "6,159 chunks/s" in lines[0]


def _stream_run(target: str, tools_busy: float) -> dict[str, object]:
    result = {
        "ttft_ms": {"count": 10, "p50": 51.0, "p99": 55.0},
        "gap_ms": {"count": 10, "p50": 80.0, "p99": 81.0},
        "tool_cores_busy": tools_busy,
        "errors": 0,
        "error_kinds": {},
    }
    return {"round": 1, "scenario": "stream c=512", "mode": "stream", "target": target,
            "result": result}  # fmt: skip


def test_a_busy_tools_core_is_flagged() -> None:
    data = {
        "ceiling": {"rps": 1000.0},
        "runs": [_stream_run("direct", 0.3), _stream_run("fd2", 0.95)],
    }
    rows = {row["target"]: row for row in report.summarize(data)["rows"]}
    assert rows["direct"]["tools_busy"] is False
    assert rows["fd2"]["tools_busy"] is True
