"""Where a stream's first token spends its time: the two legs of one stream at a time, traced.

    .venv/bin/python bench/first_token.py              # fd2, floor-lean and direct, 2 rounds
    .venv/bin/python bench/first_token.py --rounds 3 --seconds 6
    .venv/bin/python bench/first_token.py --baseline ../fd2-before   # a change against main
    make bench-first-token

One stream at a time runs through each target for `--seconds`, with the stand-in's first chunk
at 50 ms (the harness's first-token shape), under `perf record`: the scheduler's switches on
every core and the read/write system calls. Per stream, two legs:

- *request*: the load generator's write of the request → the stand-in's read of it;
- *first chunk*: the stand-in's write of the first chunk → the load generator's read of it.

Each leg's time on the server core is split by who ran: the event loop (a Granian worker's main
thread), Granian's I/O threads (tokio), its other threads (the Python-call threads), the idle
task (the core was asleep: waking it is part of the leg), anything else. Medians over the
streams of a run, then over rounds. `perf` itself runs on the tools' core, so the server core
runs only the target; the tracing slows the tools' side alike for every target.

Needs `perf` (Debian: linux-perf) and root, or a perf_event_paranoid that allows tracepoints.
"""

from __future__ import annotations

import argparse
import bisect
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from anchor_targets import start_floor
from procs import BIN, Pinning, Processes, build_tools, tree
from targets import StreamShape, Target, start_fd2, start_standins, stream_body

_SHAPE: Final = StreamShape(50, 4, 20)
_EVENT = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$")
_SWITCH = re.compile(r"next_comm=(.*?) next_pid=(\d+)")
_SYSCALL = re.compile(r"NR (\d+)(?: = (-?\d+))?")
_READ, _WRITE = 0, 1


@dataclass
class Event:
    at_us: float
    comm: str
    cpu: int
    kind: str  # "switch", "enter" or "exit"
    detail: str


@dataclass
class Legs:
    """One run's streams: each leg's length, and who ran on the server core meanwhile."""

    request: list[float] = field(default_factory=list)
    chunk: list[float] = field(default_factory=list)
    request_by: list[dict[str, float]] = field(default_factory=list)
    chunk_by: list[dict[str, float]] = field(default_factory=list)


def parse(text: str) -> list[Event]:
    events = []
    for line in text.splitlines():
        found = _EVENT.match(line)
        if found is None:
            continue
        comm, _tid, cpu, at, name, detail = found.groups()
        kind = {"sched:sched_switch": "switch", "raw_syscalls:sys_enter": "enter"}.get(
            name, "exit" if name == "raw_syscalls:sys_exit" else ""
        )
        if kind:
            events.append(Event(float(at) * 1e6, comm, int(cpu), kind, detail))
    return events


def _syscall(event: Event, comm: str, kind: str, number: int) -> bool:
    """`event` is `comm`'s entry to (or successful, non-empty return from) system call `number`."""
    if event.kind != kind or not event.comm.startswith(comm):
        return False
    found = _SYSCALL.match(event.detail)
    if found is None or int(found.group(1)) != number:
        return False
    return kind == "enter" or int(found.group(2) or 0) > 0


def _timeline(events: list[Event], core: int, roles: dict[int, str]) -> list[tuple[float, str]]:
    """(when, who) each time the server core switched to another thread."""
    switches = []
    for event in events:
        if event.kind == "switch" and event.cpu == core:
            found = _SWITCH.search(event.detail)
            if found is not None:
                comm, tid = found.group(1), int(found.group(2))
                switches.append((event.at_us, _role(comm, tid, roles)))
    return switches


def _role(comm: str, tid: int, roles: dict[int, str]) -> str:
    if tid == 0:
        return "idle"
    if tid in roles:
        return roles[tid]
    return "Granian I/O" if comm.startswith("tokio") else "other"


def _who_ran(
    switches: list[tuple[float, str]], starts: list[float], a: float, b: float
) -> dict[str, float]:
    """Microseconds of [a, b) each role ran on the server core."""
    ran: dict[str, float] = {}
    k = max(0, bisect.bisect_right(starts, a) - 1)
    while k < len(switches) and switches[k][0] < b:
        end = switches[k + 1][0] if k + 1 < len(switches) else b
        if end > a:
            who = switches[k][1]
            ran[who] = ran.get(who, 0.0) + min(end, b) - max(switches[k][0], a)
        k += 1
    return ran


def legs(events: list[Event], core: int, roles: dict[int, str]) -> Legs:
    """Finds each stream's two legs in a trace: after the load generator's write, the stand-in's
    first read (the request arrived), its first write at least 45 ms later (the first chunk, due
    at 50 ms), and the load generator's next read."""
    switches = _timeline(events, core, roles)
    starts = [at for at, _ in switches]
    found = Legs()
    i = 0
    while i < len(events):
        if not _syscall(events[i], "loadgen", "enter", _WRITE):
            i += 1
            continue
        sent = events[i].at_us
        marks: list[float] = []
        j = i + 1
        wanted = [
            ("standin", "exit", _READ, 0.0, 20_000.0),
            ("standin", "enter", _WRITE, 45_000.0, 80_000.0),
            ("loadgen", "exit", _READ, 0.0, 20_000.0),
        ]
        for comm, kind, number, after_us, within_us in wanted:
            since = marks[-1] if marks and after_us == 0.0 else sent
            while j < len(events) and events[j].at_us - since < within_us:
                event = events[j]
                if event.at_us - sent >= after_us and _syscall(event, comm, kind, number):
                    marks.append(event.at_us)
                    break
                j += 1
            else:
                break
        if len(marks) == 3:
            arrived, chunk_out, chunk_in = marks
            found.request.append(arrived - sent)
            found.chunk.append(chunk_in - chunk_out)
            found.request_by.append(_who_ran(switches, starts, sent, arrived))
            found.chunk_by.append(_who_ran(switches, starts, chunk_out, chunk_in))
        i = max(j, i + 1)
    return found


def roles_of(target: Target) -> dict[int, str]:
    """Each thread of the target's processes: a Granian worker's main thread runs its event loop."""
    roles: dict[int, str] = {}
    for pid in tree(target.process.pid):
        try:
            threads = [int(entry.name) for entry in Path(f"/proc/{pid}/task").iterdir()]
        except FileNotFoundError:
            continue
        for tid in threads:
            comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            if comm.startswith("tokio"):
                roles[tid] = "Granian I/O"
            elif tid == pid and len(threads) > 1:
                roles[tid] = "event loop"
            else:
                roles[tid] = "Granian, other"
    return roles


def trace(target: Target, pin: Pinning, seconds: float, workdir: Path) -> Legs:
    argv = [
        str(BIN / "loadgen"), "-mode", "stream", "-url", target.stream_url,
        "-body", stream_body(target.stream_model, _SHAPE), "-c", "1",
        "-chunks", str(_SHAPE.chunks), "-duration", f"{seconds}s", "-warmup", "0.2s",
    ]  # fmt: skip
    for header in target.stream_headers:
        argv += ["-H", header]
    data = workdir / f"{target.name}.data"
    record = [
        *pin.prefix(pin.tools), "perf", "record", "-q", "-a", "-m", "8M", "-o", str(data),
        "-e", "sched:sched_switch",
        "-e", "raw_syscalls:sys_enter,raw_syscalls:sys_exit", "--filter", "id == 0 || id == 1",
        "--", *argv,
    ]  # fmt: skip
    subprocess.run(record, check=True, capture_output=True, timeout=seconds + 120)
    script = subprocess.run(
        ["perf", "script", "-i", str(data)], check=True, capture_output=True, text=True
    )
    data.unlink()
    return legs(parse(script.stdout), pin.server[0], roles_of(target))


def _row(name: str, runs: list[Legs]) -> str:
    def median_of(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def split(by: str) -> str:
        parts: dict[str, float] = {}
        for run in runs:
            streams: list[dict[str, float]] = getattr(run, by)
            for who in {w for c in streams for w in c}:
                share = median_of([c.get(who, 0.0) for c in streams]) / len(runs)
                parts[who] = parts.get(who, 0.0) + share
        ranked = sorted(parts.items(), key=lambda item: -item[1])
        return ", ".join(f"{who} {us:.0f}" for who, us in ranked if us >= 3)

    request = median_of([median_of(r.request) for r in runs])
    chunk = median_of([median_of(r.chunk) for r in runs])
    streams = sum(len(r.request) for r in runs)
    return (
        f"| {name} | {streams} | {request:.0f} | {split('request_by')} | {chunk:.0f} "
        f"| {split('chunk_by')} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4, help="traced seconds per target")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (its python/ dir with this venv and native build), traced as "
        "fd2-base in the same rounds: a change's effect on the legs",
    )
    args = parser.parse_args()
    build_tools()
    pin = Pinning()
    with tempfile.TemporaryDirectory() as tmp, Processes() as procs:
        workdir = Path(tmp)
        standins = start_standins(procs, pin, StreamShape(50, 64, 20), 0, workdir)
        targets = [
            standins.direct,
            start_fd2(procs, pin, standins, workdir, 1),
            start_floor(procs, pin, standins, workdir, "floor-lean", "floor_lean:app"),
        ]
        if args.baseline is not None:
            base = start_fd2(
                procs, pin, standins, workdir, 1, name="fd2-base", source=args.baseline
            )
            targets.insert(2, base)
        runs: dict[str, list[Legs]] = {t.name: [] for t in targets}
        for round_no in range(1, args.rounds + 1):
            for target in targets:
                run = trace(target, pin, args.seconds, workdir)
                runs[target.name].append(run)
                print(
                    f"round {round_no} {target.name:>10}: {len(run.request)} streams, request "
                    f"leg {statistics.median(run.request or [0]):.0f} µs, first chunk "
                    f"{statistics.median(run.chunk or [0]):.0f} µs",
                    flush=True,
                )
    print(
        "\n| target | streams | request leg µs | on the server core (µs) | first chunk µs "
        "| on the server core (µs) |\n|---|---:|---:|---|---:|---|"
    )
    for name, found in runs.items():
        print(_row(name, found))
    if any(not r.request for found in runs.values() for r in found):
        sys.exit("a run yielded no stream's legs: is perf allowed to trace (root)?")


if __name__ == "__main__":
    main()
