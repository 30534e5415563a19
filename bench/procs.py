"""Processes the benchmark starts: the Go tools, the stand-in, fd2 and peers, with CPU pinning.

Every process is started in its own session and stopped by the `Processes` context manager, so
a failed run never leaves a server behind.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = BENCH / ".bin"


def go_binary() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if found is None:
        raise SystemExit(
            "the benchmark builds Go tools: install Go (make bench does: apt-get install golang-go)"
        )
    return found


def build_tools() -> None:
    """Build the stand-in and the load generator (instant when unchanged: Go's build cache)."""
    for tool in ("standin", "loadgen"):
        subprocess.run(
            [go_binary(), "build", "-o", str(BIN / tool), f"./{tool}"], cwd=BENCH, check=True
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Pinning:
    """Which cores the server under test gets, and which the stand-in and load generator get."""

    def __init__(self, *, pinned: bool = True, scheduling: str = "batch") -> None:
        """`pinned=False`: every process may run on every core (bench/workers.py: two workers
        need both cores). `scheduling`: the Linux policy of every server under test, fd2's
        `--cpu-scheduling` (batch, its default, or normal), so that fd2, its baseline, the
        anchors and the peers are measured alike."""
        if scheduling not in ("batch", "normal"):
            raise ValueError(f"scheduling: batch or normal, not {scheduling!r}")
        self.scheduling = scheduling
        cores = sorted(os.sched_getaffinity(0))
        self.chosen = pinned
        self.enabled = pinned and len(cores) >= 2 and shutil.which("taskset") is not None
        self.server = [cores[0]] if self.enabled else cores
        self.tools = cores[1:] if self.enabled else cores

    def prefix(self, cores: Sequence[int]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, cores))] if self.enabled else []

    def server_prefix(self) -> list[str]:
        """What a server under test is started with: its core, and its scheduling policy (chrt
        -b for batch; a policy is inherited by every process and thread it starts). fd2 is also
        told the policy (`FD2_CPU_SCHEDULING`), which it sets itself."""
        policy = ["chrt", "-b", "0"] if self.scheduling == "batch" else []
        return [*self.prefix(self.server), *policy]

    def describe(self) -> str:
        policy = f"; servers under test scheduled as {self.scheduling}"
        if not self.chosen:
            return f"not pinned: every process may run on any of core(s) {self.server}{policy}"
        if not self.enabled:
            return (
                "not pinned (fewer than 2 cores or no taskset): numbers are indicative only"
                + policy
            )
        return (
            f"server under test on core(s) {self.server}; "
            f"stand-in and load generator on core(s) {self.tools}{policy}"
        )


class Processes:
    """Starts children and stops them all (SIGTERM, then SIGKILL) on exit."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for child in reversed(self.children):
            self.stop(child)

    def start(
        self, argv: list[str], *, env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
        child = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if child in self.children:
            self.children.remove(child)


def wait_http(url: str, child: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    """Wait until `url` answers at all (any HTTP status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"{what} exited with status {child.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not answer at {url} within {timeout:.0f} s")


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue.extend(int(p) for p in task.read_text().split())
            except OSError:
                continue
    return found


def children(pid: int) -> list[int]:
    """The direct children of `pid` (Granian's workers, for the server's main process)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(p) for p in task.read_text().split())
        except OSError:
            continue
    return found


def rss_bytes(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of the processes (their own, not reaped children's)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def cores_busy_seconds(cores: Sequence[int]) -> float:
    """Time the given cores spent running anything (all processes, ours or not), from /proc/stat:
    with the target's own CPU subtracted, what other load took from its core."""
    wanted = {f"cpu{core}" for core in cores}
    total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name in wanted:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
            total += user + nice + system + irq + softirq + steal
    return total / _TICKS


def children_cpu() -> float:
    """User + system CPU of this process's reaped children (the load generator: run_json waits
    for it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_json(argv: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
