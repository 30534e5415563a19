"""The overhead benchmark: the same load sent directly to the stand-in and through fd2 (and, with
--peers, through peer gateways), in interleaved rounds, with fd2 pinned to its own core.

    .venv/bin/python bench/run.py            # full run (make bench)
    .venv/bin/python bench/run.py --quick    # a shorter run (make bench-quick)
    .venv/bin/python bench/run.py --smoke    # seconds; fails on any error (CI: make bench-smoke)
    .venv/bin/python bench/run.py --peers    # also LiteLLM and Portkey (bench/peers/install.sh)
    .venv/bin/python bench/run.py --workers-scaling --quick  # only: fd2 with 2 workers against 1

Writes bench/results/<time>/report.{md,json} (and bench/results/latest.*) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import report
import translation
import workers
from anchor_targets import start_anchors
from control_plane import latency_under_rebuilds, rebuild_figures
from machine import describe_machine
from peer_targets import start_peers
from procs import (
    BENCH,
    BIN,
    Pinning,
    Processes,
    build_tools,
    children_cpu,
    cores_busy_seconds,
    cpu_seconds,
    rss_bytes,
    run_json,
    tree,
)
from targets import (
    Standins,
    StreamShape,
    Target,
    chat_body,
    keyed,
    start_fd2,
    start_standins,
    stream_body,
)


@dataclass
class Scenario:
    name: str
    mode: str  # closed, open or stream
    concurrency: int = 0
    rate: float = 0.0
    # Streams: the workers' first starts spread evenly over this time (loadgen -ramp); 0 starts
    # them all at once (a burst: streams of equal length then stay in step, so every measured
    # start is one of `concurrency` simultaneous starts).
    ramp_s: float = 0.0
    # Streams: the stand-in's stream shape for this load (None: the run's `shape`).
    shape: StreamShape | None = None
    # Streams: the run lasts until at least this many streams have started in its measured
    # window (each gives one first token), however short `stream_duration_s` is.
    min_starts: int = 0


@dataclass
class Settings:
    rounds: int
    duration_s: float
    warmup_s: float
    stream_duration_s: float
    concurrency: list[int]
    stream_concurrency: list[int]
    rate: float
    shape: StreamShape
    # From this many streams on, the stand-in streams `wide_shape` instead (asked per request):
    # the same stream length and first-chunk time, fewer chunks further apart, so that the load
    # generator and stand-in, sharing one core, serve N open streams with headroom and the
    # figures are the target's, not the tools' queue (docs/performance.md, "512 streams").
    wide_shape: StreamShape
    wide_from: int
    # One stream at a time: the stand-in streams `first_token_shape` (the same first-chunk time,
    # fewer chunks), so that a run measures many first tokens, not one or two 1.33 s streams.
    # With one stream open, what follows its first chunk cannot change the first chunk's time.
    first_token_shape: StreamShape
    # A stream run lasts until at least this many streams have started in the measured window
    # (each gives one first token): the TTFT median is then a median, not one sample.
    min_first_tokens: int
    delay_ms: float
    # Closed loop and streams: each client's wait after an answer before its next request. 0 is
    # the classic closed loop; with a pause the server finishes its own work after an answer
    # and its cores may go idle, so each request meets a quiet (and cold) server, as the
    # requests of a lightly loaded one do.
    pause_ms: float
    fd2_workers: int
    route_table_sizes: list[int]
    rebuild_interval_s: float

    def scenarios(self) -> list[Scenario]:
        found = [Scenario(f"closed c={c}", "closed", concurrency=c) for c in self.concurrency]
        found.append(Scenario(f"open {self.rate:g}/s", "open", rate=self.rate))
        starts = self.min_first_tokens
        for c in self.stream_concurrency:
            if c == 1:
                shape = self.first_token_shape
                found.append(Scenario("stream c=1", "stream", 1, shape=shape, min_starts=starts))
                continue
            shape = self.shape_for(c)
            # Steady: starts spread over one stream's length, as N clients' would be; then the
            # burst of N at once, as measured before (a worst case: N starts in one instant).
            steady = shape.length_s()
            found.append(
                Scenario(
                    f"stream c={c}", "stream", c, ramp_s=steady, shape=shape, min_starts=starts
                )
            )
            found.append(
                Scenario(f"stream c={c} burst", "stream", c, shape=shape, min_starts=starts)
            )
        return found

    def shape_for(self, streams: int) -> StreamShape:
        return self.wide_shape if streams >= self.wide_from else self.shape

    def stream_length_s(self) -> float:
        """How long one stand-in stream of the run's shape lasts (first chunk, then the gaps)."""
        return self.shape.length_s()


def settings_for(args: argparse.Namespace) -> Settings:
    if args.smoke:
        # The wide shape from 8 streams on: the smoke run checks that the per-request shape
        # reaches the stand-in through every target (4 chunks expected, not the flags' 8).
        return Settings(
            1, 0.3, 0.1, 0.2, [1, 16], [1, 8], 200, StreamShape(5, 8, 2), StreamShape(5, 4, 4), 8,
            StreamShape(5, 2, 2), 10, 0, 0, 1, [100], 0.1,
        )  # fmt: skip
    base = Settings(
        rounds=3,
        duration_s=5,
        warmup_s=1,
        stream_duration_s=4,
        concurrency=[1, 16, 64, 256],
        stream_concurrency=[1, 16, 64, 512],
        rate=1000,
        shape=StreamShape(50, 64, 20),
        # 512 streams: first chunk at 50 ms and 1.33 s per stream as the default shape (so the
        # same 385 stream starts a second and the same 512 open at once), 16 chunks 80 ms apart:
        # 6,160 chunks/s instead of 24,640 (docs/performance.md, "512 streams").
        wide_shape=StreamShape(50, 16, 80),
        wide_from=256,
        # 50 ms to the first chunk as `shape`, 0.13 s a stream: 100 first tokens in 13 s.
        first_token_shape=StreamShape(50, 4, 20),
        min_first_tokens=100,
        delay_ms=0,
        pause_ms=0,
        fd2_workers=1,
        route_table_sizes=[1000, 10000],
        rebuild_interval_s=0.5,
    )
    if args.quick:
        base.rounds, base.duration_s, base.warmup_s, base.stream_duration_s = 2, 2, 0.5, 1.5
        base.min_first_tokens = 40  # still a median of many: 5.2 s at 1 stream, 3.3 s at 16
    if args.rounds:
        base.rounds = args.rounds
    if args.duration:
        base.duration_s = args.duration
    if args.rate:
        base.rate = args.rate
    base.delay_ms = args.delay_ms
    base.pause_ms = args.pause_ms or 0
    if args.stream_shape:
        base.shape = parse_shape(args.stream_shape)
    if args.wide_stream_shape:
        base.wide_shape = parse_shape(args.wide_stream_shape)
    return base


def parse_shape(text: str) -> StreamShape:
    ttft, chunks, gap = text.split(",")
    return StreamShape(float(ttft), int(chunks), float(gap))


def measured_seconds(scenario: Any, shape: StreamShape, cfg: Settings) -> float:
    """A run's measured window: `duration_s`, or for streams `stream_duration_s`, made longer
    when the scenario asks for `min_starts` streams to start in it (`concurrency` open at once,
    each `shape` long)."""
    if scenario.mode != "stream":
        return cfg.duration_s
    starts = getattr(scenario, "min_starts", 0)  # translation.py's Case has none
    if not starts:
        return cfg.stream_duration_s
    starts_per_s = max(1, scenario.concurrency) / shape.length_s()
    return max(cfg.stream_duration_s, starts / starts_per_s)


def measure(
    target: Target, scenario: Any, cfg: Settings, pin: Pinning, standins: Standins | None = None
) -> dict[str, Any]:
    """One load against one target. `scenario` is a Scenario or shaped like one (translation.py's
    Case has no ramp). With `standins`, the stand-ins' CPU is reported too (the tools' core)."""
    stream = scenario.mode == "stream"
    ramp = float(getattr(scenario, "ramp_s", 0.0))
    shape: StreamShape = getattr(scenario, "shape", None) or cfg.shape
    duration = measured_seconds(scenario, shape, cfg)
    # A stream's warm-up lasts one stream (every worker's first, unmeasured) and covers the ramp:
    # nothing is measured before all N streams are open.
    warmup = max(shape.length_s(), ramp) if stream else cfg.warmup_s
    argv = [
        *pin.prefix(pin.tools),
        str(BIN / "loadgen"),
        "-mode",
        scenario.mode,
        "-url",
        target.stream_url if stream else target.chat_url,
        "-body",
        stream_body(target.stream_model, None if shape == cfg.shape else shape)
        if stream
        else chat_body(target.chat_model),
        "-duration",
        f"{duration}s",
        "-warmup",
        f"{warmup}s",
    ]
    for header in target.stream_headers if stream else target.chat_headers:
        argv += ["-H", header]
    if stream:
        argv += ["-c", str(scenario.concurrency), "-chunks", str(shape.chunks)]
        argv += ["-ramp", f"{ramp}s"]
    elif scenario.mode == "open":
        argv += ["-rate", str(scenario.rate)]
    else:
        argv += ["-c", str(scenario.concurrency)]
    if scenario.mode != "open" and cfg.pause_ms:
        argv += ["-pause", f"{cfg.pause_ms}ms"]
    pids = tree(target.process.pid)
    rss_idle = rss_bytes(pids)
    peak = [rss_idle]
    measured: list[int] = []  # resident memory in the measured window: all N streams open
    done = threading.Event()
    window = (time.monotonic() + warmup, time.monotonic() + warmup + duration)

    def sample() -> None:
        while not done.wait(0.05):
            rss = rss_bytes(pids)
            peak[0] = max(peak[0], rss)
            if window[0] <= time.monotonic() <= window[1]:
                measured.append(rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tool_pids = standin_pids(standins)
    cpu_before, tools_before = cpu_seconds(pids), cpu_seconds(tool_pids)
    loadgen_before, wall_before = children_cpu(), time.monotonic()
    server_cores_before = cores_busy_seconds(pin.server)
    tool_cores_before = cores_busy_seconds(pin.tools)
    try:
        result = run_json(argv, timeout=duration + warmup + 180)
    finally:
        done.set()
        sampler.join()
    cpu = cpu_seconds(pids) - cpu_before
    wall = time.monotonic() - wall_before
    # Cores busy over the whole run (warm-up included): ~1 means the target (or, for the load
    # generator, the tools' core) was saturated, and latency then measures its queue.
    result["cpu_cores"], result["wall_s"] = cpu / wall, wall
    result["loadgen_cores"] = (children_cpu() - loadgen_before) / wall
    # The tools' side: the stand-ins' CPU, and how busy the tools' core(s) were in all (load
    # generator, stand-ins, the kernel's loopback work, anyone else): near 1 per tools' core, the
    # figures measure the tools' queue, not the target (none when nothing is pinned: one pool).
    result["standin_cores"] = (cpu_seconds(tool_pids) - tools_before) / wall if tool_pids else None
    result["tool_cores_busy"] = result["tool_core_others"] = None
    if pin.enabled:
        busy = (cores_busy_seconds(pin.tools) - tool_cores_before) / wall
        ours = result["loadgen_cores"] + (result["standin_cores"] or 0.0)
        result["tool_cores_busy"] = busy / len(pin.tools)
        # What the tools' core(s) ran besides the load generator and the stand-ins (another
        # user's processes on a shared machine): the part of *busy* that is not the harness.
        result["tool_core_others"] = max(0.0, busy - ours) / len(pin.tools)
    # What else ran on the target's core meanwhile (other users of a shared machine): the
    # target's own CPU is subtracted; when pinning is off the tools are in this figure too.
    others = cores_busy_seconds(pin.server) - server_cores_before - cpu
    result["server_core_others"] = max(0.0, others) / wall
    settle(pids)
    sent = int(result["sent_in_all"])
    result["cpu_us_per_request"] = cpu / sent * 1e6 if sent else None
    result["rss_idle_bytes"], result["rss_peak_bytes"] = rss_idle, peak[0]
    # The median of the samples taken every 50 ms in the measured window (after the warm-up and
    # ramp, so with all N streams open), less the idle figure just before the run.
    open_rss = statistics.median(measured) if measured else peak[0]
    result["rss_open_bytes"], result["rss_samples"] = open_rss, len(measured)
    if stream and scenario.concurrency:
        result["rss_per_stream_bytes"] = (open_rss - rss_idle) / scenario.concurrency
    return result


def standin_pids(standins: Standins | None) -> list[int]:
    if standins is None:
        return []
    found = [standins.direct.process.pid]
    if standins.stream_process is not None:
        found.append(standins.stream_process.pid)
    return found


def settle(pids: list[int], limit_s: float = 90) -> None:
    """Wait until the target is idle again (under 10% of a core), so that a backlog left by an
    overloaded target (timed-out requests it still works on) never burdens the next one's run."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        time.sleep(0.5)
        if cpu_seconds(pids) - before < 0.05:
            return


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2 rounds of 2 s")
    mode.add_argument("--smoke", action="store_true", help="seconds; exit 1 on any error")
    parser.add_argument("--peers", action="store_true", help="also measure LiteLLM and Portkey")
    parser.add_argument(
        "--no-anchors",
        action="store_true",
        help="skip nginx and the two floor apps (measured by default: every figure is read "
        "against them)",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, help="seconds per closed/open run (default 5)")
    parser.add_argument("--rate", type=float, help="open-loop requests/s (default 1000)")
    parser.add_argument("--delay-ms", type=float, default=0, help="stand-in delay per answer")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=0,
        help="closed loop and streams: each client waits this long after an answer before its "
        "next request (default 0)",
    )
    parser.add_argument(
        "--no-control-plane", action="store_true", help="skip the route-table figures"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another commit (its python/ dir run with this venv and native build) "
        "measured as fd2-base in the same rounds: before/after in one run",
    )
    parser.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",")],
        help="only these scenarios, e.g. 'closed c=16,stream c=1'",
    )
    parser.add_argument(
        "--stream-shape",
        help="the stand-in's streams as TTFT_MS,CHUNKS,GAP_MS (default 50,64,20); short ones "
        "(e.g. 5,4,1) give hundreds of streams per run, for time-to-first-token at c=1",
    )
    parser.add_argument(
        "--wide-stream-shape",
        help="the stand-in's streams at 256 streams and more, as TTFT_MS,CHUNKS,GAP_MS (default "
        "50,16,80: one stream lasts as long as at the default shape, with a quarter of its chunks; "
        "50,64,20 gives 512 streams the default shape, more chunks than the tools' core serves "
        "with headroom)",
    )
    parser.add_argument(
        "--workers-scaling",
        action="store_true",
        help="only this: fd2 (and floor-lean) with 2 workers against 1, closed loop at c=64, "
        "nothing pinned (bench/workers.py; not in the default run)",
    )
    parser.add_argument(
        "--cpu-scheduling",
        choices=("batch", "normal"),
        default="batch",
        help="Linux policy of every server under test (fd2's --cpu-scheduling; the baseline, "
        "anchors and peers get the same through chrt); default batch, fd2's default",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="results folder")
    args = parser.parse_args()
    cfg = settings_for(args)
    build_tools()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    if args.workers_scaling:
        scale_workers(cfg, args.out / f"workers-{stamp}", args.smoke, args.cpu_scheduling)
        return
    pin = Pinning(scheduling=args.cpu_scheduling)
    out = args.out / (f"smoke-{stamp}" if args.smoke else stamp)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    translation_runs: list[dict[str, Any]] = []  # fd2 passthrough vs translated (translation.py)
    with Processes() as procs:
        standins = start_standins(procs, pin, cfg.shape, cfg.delay_ms, out)
        fd2 = start_fd2(procs, pin, standins, out, cfg.fd2_workers)
        targets = [standins.direct, fd2, keyed(fd2)]
        if args.baseline is not None:
            base = start_fd2(
                procs, pin, standins, out, cfg.fd2_workers, name="fd2-base", source=args.baseline
            )
            targets += [base, keyed(base)]
        if not args.no_anchors:
            targets += start_anchors(procs, pin, standins, out)
        if args.peers:
            targets += start_peers(procs, pin, standins, out)
        print(f"pinning: {pin.describe()}", flush=True)
        ceiling_run = Scenario("stand-in ceiling c=64", "closed", concurrency=64)
        ceiling = measure(standins.direct, ceiling_run, cfg, pin, standins)
        print(f"stand-in ceiling: {float(ceiling['rps']):,.0f} req/s (direct, c=64)", flush=True)
        check_correctness(targets)
        for round_no in range(1, cfg.rounds + 1):
            for scenario in cfg.scenarios():
                if args.only and scenario.name not in args.only:
                    continue
                for target in targets:
                    if scenario.mode == "stream" and not target.stream_url:
                        continue  # floor-fixed has no upstream to stream from
                    result = measure(target, scenario, cfg, pin, standins)
                    runs.append(
                        {
                            "round": round_no,
                            "scenario": scenario.name,
                            "mode": scenario.mode,
                            "concurrency": scenario.concurrency,
                            "rate": scenario.rate,
                            "ramp_s": scenario.ramp_s,
                            "shape": asdict(scenario.shape) if scenario.shape else None,
                            "target": target.name,
                            "result": result,
                        }
                    )
                    print(report.progress_line(runs[-1]), flush=True)
            fd2_measure = lambda target, case: measure(target, case, cfg, pin, standins)  # noqa: E731
            translation_runs += translation.measure_round(fd2_measure, targets[1], round_no)
        control_plane: dict[str, Any] = {}
        if not args.no_control_plane:
            control_plane["rebuild"] = rebuild_figures(cfg.route_table_sizes, cfg.rounds, pin)
            control_plane["under_load"] = [
                latency_under_rebuilds(
                    procs,
                    pin,
                    standins,
                    out / f"routes-{size}",
                    size,
                    cfg.rounds,
                    cfg.duration_s,
                    cfg.rebuild_interval_s,
                )
                for size in cfg.route_table_sizes
            ]
    data: dict[str, Any] = {
        "machine": describe_machine(args.peers),
        "settings": {
            **asdict(cfg),
            "pinning": pin.describe(),
            "server_cores": pin.server,
            "tool_cores": pin.tools,
            "mode": "smoke" if args.smoke else "quick" if args.quick else "full",
            "targets": {t.name: t.workers for t in targets},
        },
        "ceiling": ceiling,
        "runs": runs,
        "control_plane": control_plane,
        "translation": translation.summarize(translation_runs),
    }
    summary = report.summarize(data)
    data["summary"] = summary
    report.write(data, out, latest=None if args.smoke else args.out)
    print(report.printable(data))
    print(f"report: {out / 'report.md'}")
    errors = translation.errors(data["translation"])
    errors += sum(int(run["result"]["errors"]) for run in runs) + sum(
        int(state["errors"])
        for figure in control_plane.get("under_load", [])
        for state in (figure["quiet"], figure["rebuilding"], figure["quiet_after"])
    )
    every = runs + translation_runs
    if args.smoke and (errors or any(int(run["result"]["requests"]) == 0 for run in every)):
        sys.exit(f"benchmark smoke failed: {errors} errors (or a run without requests)")


def scale_workers(cfg: Settings, out: Path, smoke: bool, scheduling: str) -> None:
    """Two workers against one (bench/workers.py), with its own report in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    pin = Pinning(pinned=False, scheduling=scheduling)
    machine = describe_machine(False)
    with Processes() as procs:
        standins = start_standins(procs, pin, cfg.shape, cfg.delay_ms, out)
        servers = workers.start_targets(procs, pin, standins, out)
        check_correctness([t for pair in servers.values() for t in pair])
        runs = workers.measure_rounds(
            lambda target, case: measure(target, case, cfg, pin),
            servers,
            standins.direct.process.pid,
            cfg.rounds,
        )
    settings = {**asdict(cfg), "pinning": pin.describe()}
    summary = workers.summarize(runs, servers)
    data = {"machine": machine, "settings": settings, "runs": runs, "summary": summary}
    text = workers.markdown(summary, machine, settings)
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(text)
    print("\n" + text)
    print(f"report: {out / 'report.md'}")
    errors = sum(int(run["result"]["errors"]) for run in runs)
    if smoke and (errors or any(int(run["result"]["requests"]) == 0 for run in runs)):
        sys.exit(f"workers smoke failed: {errors} errors (or a run without requests)")


def check_correctness(targets: list[Target]) -> None:
    """One embeddings and one models request per target that serves them (whole-answer checks)."""
    for target in targets:
        if target.embeddings_url is None or target.models_url is None:
            continue
        embeddings = '{"model":"text-embedding-3-small","input":"hello"}'
        for url, expect, extra in (
            (target.embeddings_url, "embeddings", ["-body", embeddings]),
            (target.models_url, "models", ["-method", "GET"]),
        ):
            argv = [str(BIN / "loadgen"), "-url", url, "-expect", expect, *extra,
                    "-c", "1", "-duration", "0.2s", "-warmup", "0s"]  # fmt: skip
            result = run_json(argv, timeout=60)
            if result["errors"] or not result["requests"]:
                sys.exit(f"{target.name}: {expect} answered wrongly: {result['error_samples']}")


if __name__ == "__main__":
    main()
