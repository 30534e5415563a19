"""Control-plane figures: how long a route-table rebuild takes for 1k and 10k (project, module,
environment) routes, and what request latency does through fd2 while rebuilds happen under load.

Rebuild times are measured in this process with fd2's own code path (the manifest directory
watcher: read, decode, compile, set up every module, swap the table), pinned to the server core,
with the route builder fd2's start-up makes (`fd2.control.runtime.worker_builder`: each route's
steps compiled, the job endpoints added). The full build's figure is the median of the rounds; the
first round of a process also imports the modules and warms the token encoder (in a thread).
The latency figures start fd2 on a manifest directory with the synthetic routes plus the
benchmark project, and compare closed-loop latency with the directory quiet against latency
while one project's manifest is rewritten (a new version, so a real rebuild) every interval.

Run alone (without the request-path figures of bench/run.py):

    .venv/bin/python bench/control_plane.py                    # rebuild times, loop stalls, p99
    .venv/bin/python bench/control_plane.py --no-under-load    # no fd2 process: CPU figures only
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from fd2.config import Settings
from fd2.control.route_builder import RouteBuilder, startup_build
from fd2.control.runtime import worker_builder
from fd2.control.secrets import SecretResolver
from fd2.control.sources.local import LocalDirectorySource
from fd2.control.tasks import Supervisor
from fd2.gc_tuning import tune_gc_for_serving
from fd2.telemetry.metrics import MetricsRegistry
from procs import BIN, Pinning, Processes, run_json
from synthetic import project_manifest, write_projects
from targets import BENCH_PEPPER, Standins, chat_body, start_fd2

MODULES, ENVIRONMENTS = 5, ("development", "staging")  # 10 routes per project


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


@asynccontextmanager
async def _builder() -> AsyncIterator[RouteBuilder]:
    """A route builder made as fd2's start-up makes one (`fd2.control.runtime.worker_builder`:
    its step compiler, jobs endpoints and upstream pool), with the settings bench/targets.py
    starts fd2 with; closed with everything it was given."""
    os.environ.setdefault("BENCH_UPSTREAM_KEY", "bench-key")
    os.environ.setdefault("BENCH_PEPPER", BENCH_PEPPER)
    settings = Settings(api_key_pepper_ref="env:BENCH_PEPPER")
    tasks = Supervisor()
    async with aiohttp.ClientSession() as http:
        builder, jobs = worker_builder(
            settings,
            secrets=SecretResolver(config_file=None),
            http=http,
            redis=None,
            tasks=tasks,
            metrics=MetricsRegistry(),
            vault=None,
        )
        try:
            yield builder
        finally:
            await tasks.aclose()
            await builder.close()
            await jobs.close()
            await builder.upstream_pool.close()


async def _rebuild_times(
    directory: Path, changed: Path, upstream: str, distinct: bool = False
) -> tuple[float, float, float, float, int]:
    """(full build s, its CPU s (every thread), one-project rebuild s, its loop-thread CPU s,
    routes) with a fresh builder, as fd2 starts one."""
    threshold = gc.get_threshold()
    async with _builder() as builder:
        watcher = LocalDirectorySource(directory, builder)
        began, cpu = time.perf_counter(), time.process_time()
        with startup_build():  # as fd2's start-up sync runs it (fd2.control.runtime)
            await watcher.sync()
        full, cpu = time.perf_counter() - began, time.process_time() - cpu
        tune_gc_for_serving()  # as fd2 does once start-up is over, before it serves
        routes = len(builder.table)
        manifest = project_manifest(
            changed.stem, MODULES, ENVIRONMENTS, upstream, version=2, distinct=distinct
        )
        await asyncio.to_thread(changed.write_text, json.dumps(manifest))
        began, on_loop = time.perf_counter(), time.thread_time()
        await watcher.sync()
        # The loop thread's CPU time: what the change cost the loop (reading the directory and
        # decoding the file run in worker threads, and the wall time includes waiting for them).
        one, loop = time.perf_counter() - began, time.thread_time() - on_loop
    gc.unfreeze()  # the next round starts from scratch, as a new fd2 would
    gc.set_threshold(*threshold)
    return full, cpu, one, loop, routes


def rebuild_figures(
    sizes: list[int], rounds: int, pin: Pinning, distinct: bool = False
) -> list[dict[str, Any]]:
    figures = []
    affinity = os.sched_getaffinity(0)
    if pin.enabled:
        os.sched_setaffinity(0, pin.server)  # the build runs where fd2 would run it
    try:
        for routes in sizes:
            projects = routes // (MODULES * len(ENVIRONMENTS))
            full, full_cpu, one, loop = [], [], [], []
            for _ in range(rounds):
                with tempfile.TemporaryDirectory() as tmp:
                    upstream = "http://127.0.0.1:9/v1"
                    write_projects(
                        Path(tmp), projects, MODULES, ENVIRONMENTS, upstream, distinct=distinct
                    )
                    f, fc, o, lo, built = asyncio.run(
                        _rebuild_times(Path(tmp), Path(tmp) / "tenant-0.json", upstream, distinct)
                    )
                    if built != routes:
                        raise SystemExit(f"built {built} routes, expected {routes}")
                full.append(f * 1000)
                full_cpu.append(fc * 1000)
                one.append(o * 1000)
                loop.append(lo * 1000)
            figures.append(
                {
                    "routes": routes,
                    "projects": projects,
                    "full_rebuild_ms": _spread(full),
                    "full_rebuild_cpu_ms": _spread(full_cpu),
                    "one_project_rebuild_ms": _spread(one),
                    "one_project_loop_cpu_ms": _spread(loop),
                }
            )
            print(
                f"route table: {routes} routes built in {statistics.median(full):.0f} ms "
                f"({statistics.median(full_cpu):.0f} ms CPU); "
                f"one project rebuilt in {statistics.median(one):.1f} ms "
                f"({statistics.median(loop):.1f} ms of the loop thread's CPU)",
                flush=True,
            )
    finally:
        os.sched_setaffinity(0, affinity)
    return figures


def latency_under_rebuilds(
    procs: Processes,
    pin: Pinning,
    standins: Standins,
    workdir: Path,
    routes: int,
    rounds: int,
    duration_s: float,
    interval_s: float,
) -> dict[str, Any]:
    """Closed-loop c=16 latency through fd2: quiet vs while a project is rebuilt every interval."""
    projects = routes // (MODULES * len(ENVIRONMENTS))
    upstream = f"http://127.0.0.1:{standins.chat_port}/v1"
    manifests = workdir / "manifests"
    write_projects(manifests, projects, MODULES, ENVIRONMENTS, upstream)
    fd2 = start_fd2(
        procs,
        pin,
        standins,
        workdir,
        workers=1,
        extra=["--manifest-poll", str(interval_s / 2), "--log-level", "info"],
    )
    log = workdir / "fd2.log"
    argv = [
        *pin.prefix(pin.tools),
        str(BIN / "loadgen"),
        "-url",
        fd2.chat_url,
        "-body",
        chat_body("gpt-4o-mini"),
        "-c",
        "16",
        "-duration",
        f"{duration_s}s",
        "-warmup",
        "0.5s",
    ]
    # Each round brackets the rebuilding run by two quiet ones: the ratio is read against their
    # mean (a shared machine's drift within the round cancels), and the second quiet run against
    # the first says how far that ratio moves with nothing changed (its noise).
    runs: dict[str, list[dict[str, Any]]] = {"quiet": [], "rebuilding": [], "quiet_after": []}
    rebuilds = 0
    for _ in range(rounds):
        runs["quiet"].append(run_json(argv, timeout=duration_s + 120))
        before = log.read_text().count("route table v")
        stop = threading.Event()

        def rewrite(stop: threading.Event) -> None:
            version = 10
            while not stop.wait(interval_s):
                version += 1
                manifest = project_manifest("tenant-0", MODULES, ENVIRONMENTS, upstream, version)
                (manifests / "tenant-0.json").write_text(json.dumps(manifest))

        writer = threading.Thread(target=rewrite, args=(stop,), daemon=True)
        writer.start()
        try:
            runs["rebuilding"].append(run_json(argv, timeout=duration_s + 120))
        finally:
            stop.set()
            writer.join()
        rebuilds += log.read_text().count("route table v") - before
        runs["quiet_after"].append(run_json(argv, timeout=duration_s + 120))
    procs.stop(fd2.process)
    out: dict[str, Any] = {
        "routes": routes + 3,
        "rebuild_interval_s": interval_s,
        "rebuilds_seen": rebuilds,
    }
    for state, results in runs.items():
        out[state] = {
            "rps": _spread([r["rps"] for r in results]),
            "p50": _spread([r["latency_ms"]["p50"] for r in results]),
            "p99": _spread([r["latency_ms"]["p99"] for r in results]),
            "errors": sum(r["errors"] for r in results),
            "error_kinds": [r["error_kinds"] for r in results if r["errors"]],
        }
    p99 = {state: [r["latency_ms"]["p99"] for r in results] for state, results in runs.items()}
    ratios, noise = p99_ratios(p99["quiet"], p99["rebuilding"], p99["quiet_after"])
    out["p99_ratio"] = _spread(ratios)
    out["p99_quiet_ratio"] = _spread(noise)
    print(
        f"{routes} routes: c=16 p99 quiet {out['quiet']['p99']['median']:.2f} ms, while "
        f"rebuilding {out['rebuilding']['p99']['median']:.2f} ms ({rebuilds} rebuilds); "
        f"rebuilding ÷ the quiet runs either side, per round: median "
        f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)}); "
        f"quiet after ÷ quiet before (noise): median {statistics.median(noise):.2f} "
        f"({', '.join(f'{r:.2f}' for r in noise)})",
        flush=True,
    )
    return out


def p99_ratios(
    quiet: list[float], rebuilding: list[float], quiet_after: list[float]
) -> tuple[list[float], list[float]]:
    """Per round: rebuilding p99 ÷ the mean of the quiet p99s either side of it, and the quiet
    run after ÷ the one before (the same state twice: how far the first ratio moves by chance).
    A quiet run that completed nothing (p99 0) gives no ratio; none at all gives [nan]."""
    ratios = [
        during / ((before + after) / 2)
        for before, during, after in zip(quiet, rebuilding, quiet_after, strict=True)
        if before > 0 and after > 0
    ] or [float("nan")]
    noise = [
        after / before for before, after in zip(quiet, quiet_after, strict=True) if before > 0
    ] or [float("nan")]
    return ratios, noise


async def _stalls(
    directory: Path, upstream: str, interval_s: float, seconds: float
) -> dict[str, Any]:
    """In this process: a 10k-route table kept by the directory watcher while one project is
    rewritten every `interval_s`; a 1 ms timer measures how late the loop runs it (its stalls)."""
    async with _builder() as builder:
        watcher = LocalDirectorySource(directory, builder, poll_s=interval_s / 2)
        with startup_build():
            await watcher.sync()
        tune_gc_for_serving()
        lags: dict[str, list[float]] = {"quiet": [], "rebuilding": []}
        version = 10

        async def probe(state: str, until: float) -> None:
            loop = asyncio.get_running_loop()
            while loop.time() < until:
                began = time.perf_counter()
                await asyncio.sleep(0.001)
                lags[state].append((time.perf_counter() - began - 0.001) * 1000)

        async def poll(until: float) -> None:
            loop = asyncio.get_running_loop()
            while loop.time() < until:
                await watcher.sync()
                await asyncio.sleep(interval_s / 2)

        async def rewrite(until: float) -> None:
            nonlocal version
            loop = asyncio.get_running_loop()
            while loop.time() < until:
                await asyncio.sleep(interval_s)
                version += 1
                manifest = project_manifest("tenant-0", MODULES, ENVIRONMENTS, upstream, version)
                staged = directory / "tenant-0.json.new"  # not *.json: the watcher skips it
                await asyncio.to_thread(staged.write_text, json.dumps(manifest))
                staged.replace(directory / "tenant-0.json")  # whole: never read half-written

        loop = asyncio.get_running_loop()
        before = builder.rebuilds
        with _step_cpu() as quiet_steps:
            await asyncio.gather(probe("quiet", loop.time() + seconds), poll(loop.time() + seconds))
        until = loop.time() + seconds
        with _step_cpu() as rebuilding_steps:
            await asyncio.gather(probe("rebuilding", until), poll(until), rewrite(until))
        rebuilds = builder.rebuilds - before
    gc.unfreeze()
    out: dict[str, Any] = {"rebuilds": rebuilds}
    for state, values in lags.items():
        steps = sorted(quiet_steps if state == "quiet" else rebuilding_steps)
        values.sort()
        out[state] = {
            "p50_ms": values[len(values) // 2],
            "p99_ms": values[int(len(values) * 0.99)],
            "max_ms": values[-1],
            # The loop thread's CPU time per callback: what the loop's own work held it for,
            # whatever else the machine was running (lags include being descheduled).
            "longest_step_cpu_ms": steps[-1] if steps else 0.0,
            "steps_over_1ms": sum(1 for step in steps if step > 1.0),
            "loop_cpu_ms": sum(steps),
        }
    return out


@contextmanager
def _step_cpu() -> Iterator[list[float]]:
    """The loop thread's CPU time (ms) of each callback the loop runs meanwhile (a task's step
    is one), measured by wrapping `asyncio.Handle._run` (the bench's process only)."""
    steps: list[float] = []
    original = asyncio.Handle._run
    measuring = [True]

    def timed(handle: asyncio.Handle) -> None:
        began = time.thread_time()
        original(handle)
        if measuring[0]:  # the step that leaves the block goes on after it: not counted
            steps.append((time.thread_time() - began) * 1000)

    asyncio.Handle._run = timed  # type: ignore[method-assign]
    try:
        yield steps
    finally:
        measuring[0] = False
        asyncio.Handle._run = original  # type: ignore[method-assign]


def loop_stalls(routes: int, interval_s: float, seconds: float, pin: Pinning) -> dict[str, Any]:
    """How late a 1 ms timer fires, quiet vs while a project is rebuilt every interval."""
    affinity = os.sched_getaffinity(0)
    if pin.enabled:
        os.sched_setaffinity(0, pin.server)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            upstream = "http://127.0.0.1:9/v1"
            projects = routes // (MODULES * len(ENVIRONMENTS))
            write_projects(Path(tmp), projects, MODULES, ENVIRONMENTS, upstream)
            out = asyncio.run(_stalls(Path(tmp), upstream, interval_s, seconds))
    finally:
        os.sched_setaffinity(0, affinity)
    quiet, rebuilding = out["quiet"], out["rebuilding"]
    print(
        f"loop lag at {routes} routes (1 ms timer): quiet p99 {quiet['p99_ms']:.2f} / max "
        f"{quiet['max_ms']:.2f} ms; rebuilding p99 {rebuilding['p99_ms']:.2f} / "
        f"max {rebuilding['max_ms']:.2f} ms ({out['rebuilds']} rebuilds); longest loop step "
        f"(its CPU): quiet {quiet['longest_step_cpu_ms']:.2f} ms, rebuilding "
        f"{rebuilding['longest_step_cpu_ms']:.2f} ms ({rebuilding['steps_over_1ms']} over 1 ms; "
        f"loop CPU {quiet['loop_cpu_ms']:.0f} → {rebuilding['loop_cpu_ms']:.0f} ms)",
        flush=True,
    )
    return out


def main() -> None:
    import argparse

    from procs import BENCH, build_tools
    from targets import StreamShape, start_standins

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000", help="route-table sizes, e.g. 1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5, help="seconds per latency run")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between rewrites")
    parser.add_argument("--no-under-load", action="store_true", help="no fd2 process")
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="rebuild figures with no two routes sharing settings (a URL per project and "
        "environment, a model per module): builds share nothing between routes",
    )
    parser.add_argument(
        "--cpu-scheduling",
        choices=("batch", "normal"),
        default="batch",
        help="Linux policy of the fd2 under load (its --cpu-scheduling; default batch)",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    pin = Pinning(scheduling=args.cpu_scheduling)
    figures: dict[str, Any] = {"rebuild": rebuild_figures(sizes, args.rounds, pin, args.distinct)}
    figures["loop_stalls"] = [loop_stalls(size, args.interval, 5, pin) for size in sizes]
    if not args.no_under_load:
        build_tools()
        out = BENCH / "results" / time.strftime("cp-%Y%m%d-%H%M%S", time.gmtime())
        out.mkdir(parents=True, exist_ok=True)
        with Processes() as procs:
            standins = start_standins(procs, pin, StreamShape(50, 64, 20), 0, out)
            figures["under_load"] = [
                latency_under_rebuilds(
                    procs,
                    pin,
                    standins,
                    out / f"routes-{size}",
                    size,
                    args.rounds,
                    args.duration,
                    args.interval,
                )
                for size in sizes
            ]
        (out / "control_plane.json").write_text(json.dumps(figures, indent=2))
        print(f"figures: {out / 'control_plane.json'}")


if __name__ == "__main__":
    main()
