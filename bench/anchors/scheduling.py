"""The anchors' threads under fd2's own `--cpu-scheduling` arrangement (FLOOR_CPU_SCHEDULING,
set by the harness to the run's policy), so that fd2 and its floor differ by their work, not by
how Linux schedules them."""

from __future__ import annotations

import asyncio
import os

from fd2.serving.cpu_scheduling import schedule_worker_threads


def schedule_like_fd2() -> None:
    """At the lifespan start-up, on the event loop's thread."""
    choice = os.environ.get("FLOOR_CPU_SCHEDULING", "normal")
    if choice not in ("batch", "normal"):
        raise SystemExit(f"FLOOR_CPU_SCHEDULING: batch or normal, not {choice!r}")
    refused = schedule_worker_threads(
        "batch" if choice == "batch" else "normal", asyncio.get_running_loop()
    )
    if refused is not None:
        raise SystemExit(refused)
