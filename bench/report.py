"""Turns the runs of one benchmark into figures (min / median / max over rounds), the report files
(markdown and JSON) and the printed summary.

Added latency is computed per round (target minus direct in the same round) before taking the
median, so machine drift between rounds cancels out. Errors are summed over rounds, never averaged.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import translation

Run = dict[str, Any]

WHOLE = {
    "rps": ("rps",),
    "p50": ("latency_ms", "p50"),
    "p95": ("latency_ms", "p95"),
    "p99": ("latency_ms", "p99"),
    "cpu_us": ("cpu_us_per_request",),
}
STREAM = {
    "ttft_p50": ("ttft_ms", "p50"),
    "ttft_p99": ("ttft_ms", "p99"),
    "gap_p50": ("gap_ms", "p50"),
    "gap_p99": ("gap_ms", "p99"),
    "rss_kb_per_stream": ("rss_per_stream_bytes",),
    "cpu_us": ("cpu_us_per_request",),
    "starts_together": ("starts_within_1ms", "p50"),
    "cpu_cores": ("cpu_cores",),
    "loadgen_cores": ("loadgen_cores",),
    "standin_cores": ("standin_cores",),
    "tool_cores": ("tool_cores_busy",),
    "tool_others": ("tool_core_others",),
    "others": ("server_core_others",),
}
ADDED = {
    "closed": ("p50", "p95", "p99"),
    "open": ("p50", "p95", "p99"),
    "stream": ("ttft_p50", "ttft_p99", "gap_p50", "gap_p99"),
}
STANDIN_LIMIT = 0.9  # a result within 10% of the stand-in's ceiling says nothing about the target
TOOLS_BUSY = 0.9  # the tools' core this busy (median): they may have queued (flagged ⚠)


def _get(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    head = result.get(path[0])
    if isinstance(head, dict) and not head.get("count"):
        return None  # no sample at all (nothing completed): no figure, rather than a zero
    value: Any = result
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return None
    return float(value) / 1024 if path == ("rss_per_stream_bytes",) else float(value)


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    runs: list[Run] = data["runs"]
    ceiling = float(data["ceiling"]["rps"])
    by_key: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        by_key[(run["scenario"], run["target"])].append(run)
    direct = {(r["scenario"], r["round"]): r for r in runs if r["target"] == "direct"}
    fd2 = {(r["scenario"], r["round"]): r for r in runs if r["target"] == "fd2"}
    rows = []
    for (scenario, target), group in by_key.items():
        mode = group[0]["mode"]
        metrics = STREAM if mode == "stream" else WHOLE
        row: dict[str, Any] = {
            "scenario": scenario,
            "target": target,
            "mode": mode,
            "rounds": len(group),
            "shape": group[0].get("shape"),
        }
        for name, path in metrics.items():
            row[name] = spread([v for r in group if (v := _get(r["result"], path)) is not None])
        row["errors"] = sum(int(r["result"]["errors"]) for r in group)
        kinds: dict[str, int] = defaultdict(int)
        for r in group:
            for kind, count in r["result"]["error_kinds"].items():
                kinds[kind] += count
        row["error_kinds"] = dict(kinds)
        if target != "direct":
            row["added"] = {
                name: spread(_paired(group, direct, metrics[name], lambda a, b: a - b))
                for name in ADDED[mode]
            }
            if mode != "stream":
                rps = row["rps"]["median"] if row["rps"] else 0.0
                row["limited_by_standin"] = rps >= STANDIN_LIMIT * ceiling
            if target != "fd2" and mode == "closed":
                row["fd2_ratio"] = spread(_paired(group, fd2, metrics["rps"], lambda a, b: b / a))
                row["fd2_cpu_ratio"] = spread(
                    _paired(group, fd2, metrics["cpu_us"], lambda a, b: b / a)
                )
            elif target != "fd2" and mode == "stream":
                # A difference, not a ratio: both first tokens include the stand-in's own wait
                # (tens of ms), which makes any ratio of them ~1.0.
                row["fd2_ttft_minus"] = spread(
                    _paired(group, fd2, metrics["ttft_p50"], lambda a, b: b - a)
                )
        if mode == "stream":
            busy = row["tool_cores"]["median"] if row["tool_cores"] else 0.0
            row["tools_busy"] = busy >= TOOLS_BUSY
        rows.append(row)
    return {"standin_ceiling_rps": ceiling, "rows": rows}


def _paired(
    group: list[Run], other: dict[tuple[str, int], Run], path: tuple[str, ...], op: Any
) -> list[float]:
    values = []
    for run in group:
        match = other.get((run["scenario"], run["round"]))
        a, b = _get(run["result"], path), _get(match["result"], path) if match else None
        if a is not None and b is not None:
            try:
                values.append(op(a, b))
            except ZeroDivisionError:  # a target that completed nothing: no ratio for that round
                continue
    return values


def _cell(value: dict[str, float] | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}-{value['max']:.{digits}f})"


def _signed(value: dict[str, float]) -> str:
    return f"{value['median']:+.3f} ({value['min']:+.3f} to {value['max']:+.3f})"


def errors_cell(row: dict[str, Any]) -> str:
    if not row["errors"]:
        return "0"
    kinds = ", ".join(f"{k}: {v}" for k, v in row["error_kinds"].items())
    return f"**{row['errors']}** ({kinds})"


def _idle_text(idle: dict[str, str | None] | None) -> str:
    """Reports from before the idle settings were recorded have none."""
    if not idle or not idle.get("driver"):
        return ""
    text = f"; idle cores: {idle['driver']} driver, {idle.get('governor')} governor"
    if idle.get("guest_halt_poll_ns") is not None:
        text += f", guest_halt_poll_ns {idle['guest_halt_poll_ns']}"
    return text


def _settings_text(s: dict[str, Any]) -> str:
    text = (
        f"mode: {s['mode']}; {s['rounds']} interleaved round(s); {s['duration_s']} s per run "
        f"after {s['warmup_s']} s warm-up; streams: {s['stream_duration_s']} s, or as long as "
        f"{s.get('min_first_tokens', 0)} stream starts take"
    )
    if s.get("pause_ms"):  # reports from before the setting have none
        text += f"; each client pauses {s['pause_ms']} ms after an answer"
    return text


def markdown(data: dict[str, Any]) -> str:
    s, m = data["settings"], data["machine"]
    summary = data["summary"]
    lines = [
        "# fd2 benchmark report",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, kernel {m['kernel']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}"
        + _idle_text(m.get("cpu_idle")),
        f"- commit: {m['commit']}; versions: "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v),
        f"- {_settings_text(s)}",
        f"- pinning: {s['pinning']}; targets: "
        + ", ".join(f"{k} = {v}" for k, v in s["targets"].items()),
        f"- stand-in ceiling: {summary['standin_ceiling_rps']:,.0f} req/s (direct, c=64); a "
        "result within 10% of it is marked ⚠ (limited by the stand-in)",
        "",
        "Cells: median (min-max) over rounds. Latency in ms, CPU in µs per request "
        "(the target's processes), added = target - direct in the same round.",
        "",
        "## Whole answers (closed loop at fixed concurrency; open loop at a fixed rate)",
        "",
        "| load | target | req/s | p50 | p95 | p99 | added p50 | added p95 | added p99 "
        "| CPU µs/req | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = summary["rows"]
    for row in (r for r in rows if r["mode"] != "stream"):
        added = row.get("added", {})
        flag = " ⚠" if row.get("limited_by_standin") else ""
        lines.append(
            f"| {row['scenario']} | {row['target']} | {_cell(row['rps'], 0)}{flag} | "
            f"{_cell(row['p50'])} | {_cell(row['p95'])} | {_cell(row['p99'])} | "
            f"{_cell(added.get('p50'))} | {_cell(added.get('p95'))} | {_cell(added.get('p99'))} | "
            f"{_cell(row['cpu_us'], 0)} | {errors_cell(row)} |"
        )
    shape = s["shape"]
    lines += [
        "",
        f"## Streaming (stand-in: first chunk at {shape['ttft_ms']} ms, {shape['chunks']} "
        f"chunks {shape['gap_ms']} ms apart; every chunk checked in order)",
        "",
        *_other_shapes(rows, shape),
        "`stream c=N`: N streams open, their first starts spread evenly over one stream's length "
        "(loadgen `-ramp`), so starts stay spread out as real clients' are (steady state). "
        "`stream c=N burst`: all N start in the same instant and, lasting alike, stay in step: "
        "every measured start is one of N simultaneous starts (a worst case). Measuring begins "
        "once all N are open. *together*: median number of measured starts within 1 ms of a "
        "start (itself included). **RSS KiB/stream** = (median resident memory of the target's "
        "processes, sampled every 50 ms while all N streams are open, minus its resident memory "
        "just before the run) ÷ N. *cores*: the target's CPU seconds ÷ the run's wall time, "
        "then the load generator's and the stand-ins' (~1: that process or its core was "
        "saturated, and latency measures its queue); *tools' core*: how busy the core of the "
        "load generator and stand-ins was in all (theirs, the kernel's loopback work, anyone "
        "else's), from /proc/stat: well below 1, the tools had headroom and the figures are the "
        "target's; *tools' others*: the part of it that was neither the load generator nor a "
        "stand-in (another user's processes); ⚠ marks a tools' core at least "
        f"{TOOLS_BUSY:.0%} busy (median): the tools may have queued, so read direct's own TTFT "
        "against the stand-in's and *tools' others* before the added figures; *others*: what "
        "other processes (not the target) took of the target's core(s) meanwhile, from "
        "/proc/stat (a shared machine's other users).",
        "",
        "| streams | target | TTFT p50 | TTFT p99 | added TTFT p50 | added TTFT p99 | gap p50 "
        "| gap p99 | added gap p50 | added gap p99 | together | RSS KiB/stream | cores "
        "| loadgen cores | stand-in cores | tools' core | tools' others | others | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in (r for r in rows if r["mode"] == "stream"):
        added = row.get("added", {})
        lines.append(
            f"| {row['scenario']} | {row['target']} | {_cell(row['ttft_p50'])} | "
            f"{_cell(row['ttft_p99'])} | {_cell(added.get('ttft_p50'))} | "
            f"{_cell(added.get('ttft_p99'))} | {_cell(row['gap_p50'], 3)} | "
            f"{_cell(row['gap_p99'], 3)} | {_cell(added.get('gap_p50'), 3)} | "
            f"{_cell(added.get('gap_p99'), 3)} | {_cell(row['starts_together'], 0)} | "
            f"{_cell(row['rss_kb_per_stream'], 1)} | {_cell(row['cpu_cores'])} | "
            f"{_cell(row['loadgen_cores'])} | {_cell(row['standin_cores'])} | "
            f"{_cell(row['tool_cores'])}{' ⚠' if row.get('tools_busy') else ''} | "
            f"{_cell(row['tool_others'])} | {_cell(row['others'])} | "
            f"{errors_cell(row)} |"
        )
    lines += _control_plane(data.get("control_plane") or {})
    lines += _against(rows)
    lines += translation.markdown(data.get("translation"))
    return "\n".join(lines) + "\n"


def _against(rows: list[dict[str, Any]]) -> list[str]:
    """fd2 against each anchor and peer, paired round by round: whole answers as ratios, streams
    as the difference of the first tokens (fd2's minus the other's; negative: fd2 was faster)."""
    closed = [r for r in rows if "fd2_ratio" in r]
    streams = [r for r in rows if "fd2_ttft_minus" in r]
    if not (closed or streams):
        return []
    lines = ["", "## fd2 against the anchors and peers (same run, paired by round)", ""]
    if closed:
        lines += [
            "| load | against | fd2's req/s ÷ its | fd2's CPU µs/request ÷ its |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['scenario']} | {r['target']} | {_cell(r['fd2_ratio'], 2)} | "
            f"{_cell(r.get('fd2_cpu_ratio'), 2)} |"
            for r in closed
        ]
        lines.append("")
    if streams:
        lines += ["| load | against | fd2's TTFT p50 minus its, ms |", "|---|---|---|"]
        lines += [
            f"| {r['scenario']} | {r['target']} | {_signed(r['fd2_ttft_minus'])} |" for r in streams
        ]
        lines.append("")
    return lines


def _other_shapes(rows: list[dict[str, Any]], default: dict[str, Any]) -> list[str]:
    """A line per stream load whose stand-in shape is not the run's (run.py's wide shape)."""
    shaped: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in rows:
        shape = row.get("shape")
        if row["mode"] == "stream" and shape and shape != default:
            shaped.setdefault(row["scenario"], (row["scenario"], shape))
    lines = []
    for scenario, shape in shaped.values():
        streams = int(scenario.split("c=")[1].split()[0])
        length_s = (shape["ttft_ms"] + shape["chunks"] * shape["gap_ms"]) / 1000
        lines.append(
            f"- `{scenario}`: first chunk at {shape['ttft_ms']} ms, {shape['chunks']} chunks "
            f"{shape['gap_ms']} ms apart ({streams * shape['chunks'] / length_s:,.0f} chunks/s "
            "with all streams open; asked per request, `metadata.standin_shape`)"
        )
    return [*lines, ""] if lines else []


def _control_plane(figures: dict[str, Any]) -> list[str]:
    if not figures:
        return []
    lines = [
        "",
        "## Control plane: route-table rebuilds",
        "",
        "| routes (project, module, environment) | full build ms | one project rebuilt ms |",
        "|---|---|---|",
    ]
    lines += [
        f"| {f['routes']:,} ({f['projects']} projects) | {_cell(f['full_rebuild_ms'], 1)} | "
        f"{_cell(f['one_project_rebuild_ms'], 1)} |"
        for f in figures["rebuild"]
    ]
    lines += [
        "",
        "Requests through fd2 at c=16, quiet vs while one project's manifest is rewritten "
        "(and rebuilt) every interval:",
        "",
        "| routes | rebuild every | rebuilds seen | state | req/s | p50 | p99 | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures["under_load"]:
        for state in ("quiet", "rebuilding", "quiet_after"):
            if state not in f:
                continue  # a report written before the quiet run after
            s = f[state]
            errors = f"**{s['errors']}** {s['error_kinds']}" if s["errors"] else "0"
            lines.append(
                f"| {f['routes']:,} | {f['rebuild_interval_s']} s | {f['rebuilds_seen']} "
                f"| {state} | {_cell(s['rps'], 0)} | {_cell(s['p50'])} | {_cell(s['p99'])} "
                f"| {errors} |"
            )
    for f in figures["under_load"]:
        if "p99_quiet_ratio" in f:
            lines += [
                "",
                f"{f['routes']:,} routes, p99 while rebuilding ÷ the mean of the quiet runs either "
                f"side, per round: {_cell(f['p99_ratio'])}; the quiet run after ÷ the one before "
                f"(the same state twice: the ratio's noise): {_cell(f['p99_quiet_ratio'])}.",
            ]
    return lines


def write(data: dict[str, Any], out: Path, latest: Path | None) -> None:
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(markdown(data))
    if latest is not None:
        shutil.copy(out / "report.json", latest / "latest.json")
        shutil.copy(out / "report.md", latest / "latest.md")


def printable(data: dict[str, Any]) -> str:
    return "\n" + markdown(data)


def progress_line(run: Run) -> str:
    r = run["result"]
    head = f"round {run['round']} {run['scenario']:>18} {run['target']:>8}:"
    if run["mode"] == "stream" and not r["ttft_ms"]["count"]:
        body = "no complete stream"
    elif run["mode"] == "stream":
        body = (
            f"ttft p50 {r['ttft_ms']['p50']:.2f} ms, gap p99 {r['gap_ms']['p99']:.3f} ms, "
            f"{r.get('chunks', 0)} chunks, {(r.get('starts_within_1ms') or {}).get('p50', 0):.0f} "
            f"start(s) together{_tools(r)}"
        )
    else:
        latency = r["latency_ms"]
        body = f"{r['rps']:>9,.0f} req/s, p50 {latency['p50']:.3f} ms, p99 {latency['p99']:.3f} ms"
    errors = f", ERRORS {r['errors']} {r['error_kinds']}" if r["errors"] else ""
    return f"{head} {body}{errors}"


def _tools(result: dict[str, Any]) -> str:
    """The tools' side of a stream run, when it was measured: is the figure the target's?"""
    busy = result.get("tool_cores_busy")
    if busy is None:
        return ""
    return (
        f"; tools' core {busy:.2f} busy (loadgen {result.get('loadgen_cores') or 0:.2f}, "
        f"stand-ins {result.get('standin_cores') or 0:.2f}, "
        f"others {result.get('tool_core_others') or 0:.2f})"
    )
