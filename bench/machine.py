"""The machine and software a report was measured on (so figures are never quoted without it)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from procs import ROOT, go_binary

PEERS = Path(__file__).resolve().parent / ".peers"


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=10, cwd=ROOT, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpu_idle() -> dict[str, str | None]:
    """How an idle core sleeps: a stream's first token at 1 stream is mostly cold-path and
    wake-up time, so two runs under different idle settings are not comparable. (A guest's
    `haltpoll` driver with `guest_halt_poll_ns` 0 never polls before halting.)"""
    return {
        "driver": _read("/sys/devices/system/cpu/cpuidle/current_driver"),
        "governor": _read("/sys/devices/system/cpu/cpuidle/current_governor"),
        "guest_halt_poll_ns": _read("/sys/module/haltpoll/parameters/guest_halt_poll_ns"),
    }


def describe_machine(peers: bool) -> dict[str, object]:
    commit = _run(["git", "rev-parse", "HEAD"])
    dirty = bool(_run(["git", "status", "--porcelain", "--untracked-files=no"]))
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "fd2": _version("fd2"),
        "granian": _version("granian"),
        "uvloop": _version("uvloop"),
        "aiohttp": _version("aiohttp"),
        "go": _run([go_binary(), "version"]),
    }
    if peers:
        versions["litellm"] = _run(
            [
                str(PEERS / "litellm" / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ]
        )
        versions["portkey"] = _run(
            [
                "node",
                "-p",
                f"require('{PEERS}/portkey/node_modules/@portkey-ai/gateway/package.json').version",
            ]
        )
        versions["node"] = _run(["node", "--version"])
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0)),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "cpu_idle": _cpu_idle(),
        "load_average_at_start": os.getloadavg(),
        "commit": commit + ("-dirty" if dirty else ""),
        "versions": versions,
    }
