"""What translating to a provider costs in the real harness (issue 12, point 6): the same OpenAI
requests sent to fd2's passthrough modules (`chat`, `stream`) and to modules that translate them
to Anthropic's Messages API (`chat-anthropic`, `stream-anthropic`, targets.with_anthropic_modules)
against the same Go stand-ins, back to back in each round of the run, one fd2 process for both.

CPU is the scheduler's per-thread count of fd2's processes (/proc/*/task/*/schedstat, ns), not
the harness's 10 ms ticks: at c=1 a run holds only a few streams.

    .venv/bin/python bench/translation.py --rounds 8 --quick   # these cases alone, more rounds

Every answer is still checked as an OpenAI completion or chunk stream by the load generator, so a
translation that loses or reorders a chunk fails the run. Per round, translated minus passthrough:

- whole answers (closed c=1, c=16): CPU µs per request;
- streams (c=1, c=16): TTFT p50, gap p50, and CPU µs per chunk (the stream's CPU difference
  divided by its chunks: an upper bound, as the request's own translation is counted in it).

The gap between chunks is the stand-in's schedule plus the difference of two chunks' delays, so
a constant per-chunk delay cancels out of it; the CPU per chunk is the figure that grows with the
work done per event. The budget is 50 µs for each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from procs import BENCH, Pinning, Processes, build_tools, tree
from targets import Target, start_fd2, start_standins, translated

BUDGET_US = 50.0
PROVIDER = "anthropic"


@dataclass
class Case:
    """A load, shaped as run.Scenario (what run.measure reads)."""

    name: str
    mode: str
    concurrency: int
    rate: float = 0.0


CASES = [
    Case("closed c=1", "closed", 1),
    Case("closed c=16", "closed", 16),
    Case("stream c=1", "stream", 1),
    Case("stream c=16", "stream", 16),
]

Measure = Callable[[Target, Any], dict[str, Any]]


def measure_round(measure: Measure, fd2: Target, round_no: int) -> list[dict[str, Any]]:
    """Each case against the passthrough and the translation, back to back; which goes first
    alternates by round, so neither always runs on the machine the other left behind."""
    pair = [fd2, translated(fd2, PROVIDER)]
    if round_no % 2 == 0:
        pair.reverse()
    runs = []
    for case in CASES:
        for target in pair:
            pids = tree(target.process.pid)
            before = cpu_ns(pids)
            result = measure(target, case)
            precise_cpu(result, cpu_ns(pids) - before)
            runs.append(
                {
                    "round": round_no,
                    "scenario": case.name,
                    "mode": case.mode,
                    "target": "passthrough" if target is fd2 else PROVIDER,
                    "result": result,
                }
            )
            print(_progress(runs[-1]), flush=True)
    return runs


def cpu_ns(pids: Sequence[int]) -> int:
    """On-CPU nanoseconds of every thread of the processes (the scheduler's own count): the
    harness's utime + stime come in 10 ms ticks, too coarse for a few streams at c=1."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended in between
    return total


def precise_cpu(result: dict[str, Any], nanoseconds: int) -> None:
    """CPU per request from the scheduler's count (run and settling after it, as for every
    target alike); the tick-based figure is kept beside it."""
    sent = int(result["sent_in_all"])
    if sent and nanoseconds:  # else (no schedstat) the tick-based figure stays
        result["cpu_us_per_request_ticks"] = result.get("cpu_us_per_request")
        result["cpu_us_per_request"] = nanoseconds / 1000 / sent


def _progress(run: dict[str, Any]) -> str:
    r = run["result"]
    head = f"round {run['round']} translation {run['scenario']:>11} {run['target']:>11}:"
    cpu = r.get("cpu_us_per_request")
    cpu_text = f"CPU {cpu:,.0f} µs/req" if cpu is not None else "CPU -"
    if run["mode"] == "stream":
        if not r["ttft_ms"]["count"]:
            body = "no complete stream"
        else:
            body = f"ttft p50 {r['ttft_ms']['p50']:.3f} ms, gap p50 {r['gap_ms']['p50']:.3f} ms"
    else:
        body = f"{r['rps']:,.0f} req/s, p50 {r['latency_ms']['p50']:.3f} ms"
    errors = f", ERRORS {r['errors']} {r['error_kinds']}" if r["errors"] else ""
    return f"{head} {body}, {cpu_text}{errors}"


def _per_chunk_cpu(result: dict[str, Any]) -> float | None:
    cpu, chunks, streams = (
        result.get("cpu_us_per_request"),
        result.get("chunks"),
        result["ttft_ms"]["count"] if result.get("ttft_ms") else 0,
    )
    if cpu is None or not chunks or not streams:
        return None
    # CPU per stream started (warm-up included) over the chunks of a complete stream.
    return float(cpu) / (chunks / streams)


FIGURES: dict[str, dict[str, Callable[[dict[str, Any]], float | None]]] = {
    "closed": {"cpu_us_per_request": lambda r: r.get("cpu_us_per_request")},
    "stream": {
        "ttft_p50_us": lambda r: r["ttft_ms"]["p50"] * 1000 if r["ttft_ms"]["count"] else None,
        "gap_p50_us": lambda r: r["gap_ms"]["p50"] * 1000 if r["gap_ms"]["count"] else None,
        "cpu_us_per_chunk": _per_chunk_cpu,
    },
}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case and figure: passthrough, translated, and translated minus passthrough per round
    (median, min, max over rounds)."""
    rows = []
    for case in CASES:
        mine = [r for r in runs if r["scenario"] == case.name]
        rounds = sorted({r["round"] for r in mine})
        row: dict[str, Any] = {"scenario": case.name, "mode": case.mode, "figures": {}}
        for figure, read in FIGURES[case.mode].items():
            values: dict[str, list[float]] = {"passthrough": [], PROVIDER: [], "added": []}
            for round_no in rounds:
                pair = {r["target"]: read(r["result"]) for r in mine if r["round"] == round_no}
                base, other = pair.get("passthrough"), pair.get(PROVIDER)
                if base is not None and other is not None:
                    values["passthrough"].append(base)
                    values[PROVIDER].append(other)
                    values["added"].append(other - base)
            row["figures"][figure] = {name: _spread(v) for name, v in values.items()}
        row["errors"] = {
            target: sum(int(r["result"]["errors"]) for r in mine if r["target"] == target)
            for target in ("passthrough", PROVIDER)
        }
        rows.append(row)
    return {"provider": PROVIDER, "budget_us": BUDGET_US, "rows": rows}


def errors(summary: dict[str, Any] | None) -> int:
    if not summary:
        return 0
    return sum(sum(row["errors"].values()) for row in summary["rows"])


def _cell(value: dict[str, float] | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return (
        f"{value['median']:,.{digits}f} ({value['min']:,.{digits}f} to {value['max']:,.{digits}f})"
    )


LABELS = {
    "cpu_us_per_request": "CPU µs/request",
    "ttft_p50_us": "TTFT p50 µs",
    "gap_p50_us": "gap p50 µs",
    "cpu_us_per_chunk": "CPU µs/chunk",
}


def markdown(summary: dict[str, Any] | None) -> list[str]:
    """The report's "translation cost" section (nothing when it was not measured)."""
    if not summary:
        return []
    provider = summary["provider"]
    lines = [
        "",
        f"## Translation cost: fd2 passthrough vs fd2 → {provider} (same fd2, same rounds)",
        "",
        "OpenAI requests in both cases, every answer checked as OpenAI's; the stand-in answers "
        f"the {provider} modules in its API. added = {provider} minus passthrough in the same "
        f"round, then median (min to max) over rounds. Budget (issue 12): "
        f"{summary['budget_us']:g} µs per chunk and per plain request.",
        "",
        f"| load | figure | passthrough | {provider} | added | errors |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        errs = row["errors"]
        err_text = f"{errs['passthrough']} / {errs[provider]}"
        if any(errs.values()):
            err_text = f"**{err_text}**"
        for figure, values in row["figures"].items():
            lines.append(
                f"| {row['scenario']} | {LABELS[figure]} | {_cell(values['passthrough'])} | "
                f"{_cell(values[provider])} | {_cell(values['added'])} | {err_text} |"
            )
    lines += [
        "",
        "The gap between chunks cancels a constant per-chunk delay (it is the difference of two "
        "chunks' delays); CPU µs/chunk is the stream's CPU over its chunks, request translation "
        "included (an upper bound of the per-chunk work).",
    ]
    return lines


class _Options(argparse.Namespace):
    """run.settings_for's options; any it reads that are not given here are unset."""

    def __getattr__(self, name: str) -> None:
        return None


def main() -> None:
    """The translation cases alone, for more rounds than a whole run affords on a busy machine:
    the same stand-ins, fd2, settings and measurement as bench/run.py."""
    import run  # the runner's measurement (run imports this module: imported here, not above)

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="bench-quick's durations")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    cfg = run.settings_for(_Options(quick=args.quick, smoke=False, rounds=args.rounds, delay_ms=0))
    build_tools()
    pin = Pinning()
    out = args.out / time.strftime("translation-%Y%m%d-%H%M%S", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with Processes() as procs:
        standins = start_standins(procs, pin, cfg.shape, cfg.delay_ms, out)
        fd2 = start_fd2(procs, pin, standins, out, cfg.fd2_workers)
        print(f"pinning: {pin.describe()}", flush=True)
        for round_no in range(1, cfg.rounds + 1):
            runs += measure_round(lambda t, c: run.measure(t, c, cfg, pin), fd2, round_no)
    summary = summarize(runs)
    data = {"settings": {**asdict(cfg), "pinning": pin.describe()}, "runs": runs,
            "translation": summary}  # fmt: skip
    (out / "translation.json").write_text(json.dumps(data, indent=2) + "\n")
    text = "\n".join(markdown(summary)) + "\n"
    (out / "translation.md").write_text(text)
    print(text)
    print(f"report: {out / 'translation.md'}")
    if errors(summary):
        sys.exit(f"translation cost: {errors(summary)} errors")


if __name__ == "__main__":
    main()
