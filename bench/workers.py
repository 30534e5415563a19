"""Two workers against one (issue 16, point 5): `bench/run.py --workers-scaling`, not in the
default run.

fd2 with `--workers 1` and with `--workers 2`, and floor-lean (Granian + the same lean relay with
nothing else) with 1 and 2 workers, all serving the same stand-in, in interleaved rounds (the order
turns each round), closed loop at c=64 on whole answers. Nothing is pinned: two workers need both
cores, so the stand-in and the load generator share them with the server.

Per target and round: req/s, latency, CPU µs per request (all the server's processes), each
worker's CPU seconds from /proc (how evenly the two shared the requests: Granian's workers accept
from one socket, and a closed loop's connections are kept alive, so the split is whatever the
accepts were), and the CPU the load generator and the stand-in took meanwhile. With fewer than 3
cores the tools compete with the workers for the cores, so the 2 ÷ 1 ratio is a lower bound of
what two workers on two cores of their own would serve; floor-lean's ratio in the same rounds is
a reference for what this machine lets two Granian workers gain.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchor_targets import start_floor
from procs import Pinning, Processes, children, children_cpu, cpu_seconds, tree
from targets import Standins, Target, start_fd2

CONCURRENCY = 64
Measure = Callable[[Target, Any], dict[str, Any]]


@dataclass
class Case:
    """A load, shaped as run.Scenario (what run.measure reads)."""

    name: str = f"closed c={CONCURRENCY}"
    mode: str = "closed"
    concurrency: int = CONCURRENCY
    rate: float = 0.0


def start_targets(
    procs: Processes, pin: Pinning, standins: Standins, out: Path
) -> dict[str, list[Target]]:
    """Per server, its 1-worker and 2-worker instances (all running at once; the idle ones wait)."""
    found: dict[str, list[Target]] = {"fd2": [], "floor-lean": []}
    for workers in (1, 2):
        name = f"fd2-{workers}w"
        found["fd2"].append(start_fd2(procs, pin, standins, out / name, workers, name=name))
        name = f"floor-lean-{workers}w"
        found["floor-lean"].append(
            start_floor(procs, pin, standins, out, name, "floor_lean:app", workers)
        )
    return found


def measure_one(measure: Measure, target: Target, standin_pid: int) -> dict[str, Any]:
    workers = children(target.process.pid)
    before = [cpu_seconds([pid]) for pid in workers]
    tools_before = children_cpu()
    standin_pids = tree(standin_pid)
    standin_before = cpu_seconds(standin_pids)
    result = measure(target, Case())
    worker_cpu = [cpu_seconds([pid]) - b for pid, b in zip(workers, before, strict=True)]
    total = sum(worker_cpu)
    result["worker_cpu_s"] = worker_cpu
    result["worker_share"] = [c / total for c in worker_cpu] if total else []
    result["loadgen_cpu_s"] = children_cpu() - tools_before
    result["standin_cpu_s"] = cpu_seconds(standin_pids) - standin_before
    # Unpinned, run.measure's "others" is everything but the server: less the tools, what the
    # machine's other users took.
    tools = result["loadgen_cpu_s"] + result["standin_cpu_s"]
    foreign = float(result["server_core_others"]) * float(result["wall_s"]) - tools
    result["foreign_cores"] = max(0.0, foreign) / float(result["wall_s"])
    return result


def measure_rounds(
    measure: Measure, targets: dict[str, list[Target]], standin_pid: int, rounds: int
) -> list[dict[str, Any]]:
    runs = []
    for round_no in range(1, rounds + 1):
        order = [t for pair in targets.values() for t in pair]
        if round_no % 2 == 0:
            order.reverse()  # neither always runs on the machine the other left behind
        for target in order:
            result = measure_one(measure, target, standin_pid)
            runs.append({"round": round_no, "target": target.name, "result": result})
            shares = ", ".join(f"{s:.0%}" for s in result["worker_share"])
            print(
                f"round {round_no} workers {target.name:>14}: {float(result['rps']):>8,.0f} req/s, "
                f"{float(result['cpu_us_per_request']):.0f} µs/req, worker shares {shares}"
                + (f", ERRORS {result['errors']}" if result["errors"] else ""),
                flush=True,
            )
    return runs


def summarize(runs: list[dict[str, Any]], servers: dict[str, list[Target]]) -> dict[str, Any]:
    rows = []
    for server, (one, two) in servers.items():
        for target in (one, two):
            mine = [r["result"] for r in runs if r["target"] == target.name]
            rows.append(
                {
                    "server": server,
                    "target": target.name,
                    "rps": _spread([float(r["rps"]) for r in mine]),
                    "p50": _spread([float(r["latency_ms"]["p50"]) for r in mine]),
                    "p99": _spread([float(r["latency_ms"]["p99"]) for r in mine]),
                    "cpu_us": _spread([float(r["cpu_us_per_request"]) for r in mine]),
                    "cores_busy": _spread([float(r["cpu_cores"]) for r in mine]),
                    "loadgen_cores": _spread([float(r["loadgen_cores"]) for r in mine]),
                    "foreign_cores": _spread([float(r["foreign_cores"]) for r in mine]),
                    "worker_share_min": _spread([min(r["worker_share"]) for r in mine]),
                    "worker_shares": [r["worker_share"] for r in mine],
                    "tools_cpu_s": _spread(
                        [float(r["loadgen_cpu_s"]) + float(r["standin_cpu_s"]) for r in mine]
                    ),
                    "errors": sum(int(r["errors"]) for r in mine),
                }
            )
        ratios = []
        for round_no in sorted({int(r["round"]) for r in runs}):
            a, b = (
                next(r["result"] for r in runs if r["round"] == round_no and r["target"] == t.name)
                for t in (one, two)
            )
            if float(a["rps"]):
                ratios.append(float(b["rps"]) / float(a["rps"]))
        rows[-1]["ratio"] = _spread(ratios)
    return {"rows": rows, "cores": len(os.sched_getaffinity(0))}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _cell(value: dict[str, float] | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value['median']:.{digits}f} ({value['min']:.{digits}f}-{value['max']:.{digits}f})"


def markdown(summary: dict[str, Any], machine: dict[str, Any], settings: dict[str, Any]) -> str:
    cores = summary["cores"]
    lines = [
        "# fd2 benchmark report: two workers against one",
        "",
        f"- machine: {machine['cpu']}, {cores} core(s) available, kernel {machine['kernel']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in machine['load_average_at_start'])}",
        f"- commit: {machine['commit']}",
        f"- {settings['rounds']} interleaved round(s) of {settings['duration_s']} s after "
        f"{settings['warmup_s']} s warm-up; closed loop at c={CONCURRENCY}, whole answers; "
        f"pinning: {settings['pinning']}",
        "",
    ]
    if cores < 3:
        lines += [
            f"**Caveat: {cores} core(s).** The load generator and the stand-in run on the same "
            "cores as the two workers and take CPU from them (the *tools CPU* column), so the "
            "2 ÷ 1 worker ratio below is a lower bound of what two workers on two cores of their "
            "own would serve; floor-lean's ratio in the same rounds is a reference for what "
            "this machine lets two Granian workers gain on this load.",
            "",
        ]
    lines += [
        "Cells: median (min-max) over rounds. CPU µs/req: all the server's processes over the "
        "requests sent; cores busy: the server's CPU seconds ÷ the run's wall time (1 worker "
        "can use at most 1, 2 workers at most 2; less means something else, the tools or other "
        "load on the machine, set the pace); loadgen cores: the load generator's, the same way; "
        "worker shares: each worker's CPU "
        "seconds (from /proc) ÷ the workers' total, per round; tools CPU: the load generator's "
        "and the stand-in's CPU seconds during the run; others: cores taken meanwhile by "
        "processes that are neither the server nor the tools (a shared machine's other users, "
        "from /proc/stat).",
        "",
        "| server | workers | req/s | 2 ÷ 1 req/s | p50 ms | p99 ms | CPU µs/req | cores busy "
        "| loadgen cores | worker shares | tools CPU s | others | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        shares = "; ".join(" / ".join(f"{s:.0%}" for s in r) for r in row["worker_shares"])
        lines.append(
            f"| {row['server']} | {row['target'].rsplit('-', 1)[1]} | {_cell(row['rps'], 0)} | "
            f"{_cell(row.get('ratio'))} | {_cell(row['p50'])} | {_cell(row['p99'])} | "
            f"{_cell(row['cpu_us'], 0)} | {_cell(row['cores_busy'])} | "
            f"{_cell(row['loadgen_cores'])} | {shares} | "
            f"{_cell(row['tools_cpu_s'])} | {_cell(row['foreign_cores'])} | {row['errors']} |"
        )
    return "\n".join(lines) + "\n"
