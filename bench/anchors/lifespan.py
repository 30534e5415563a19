"""The anchors' ASGI lifespan. At start-up their threads are arranged as fd2's own
`--cpu-scheduling` arranges a worker's (FLOOR_CPU_SCHEDULING, set by the harness to the run's
policy), so that fd2 and its floor differ by their work, not by how Linux schedules them; at
shutdown the app's upstream client is closed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from fd2.serving.cpu_scheduling import schedule_worker_threads


async def serve_lifespan(
    receive: Any, send: Any, close: Callable[[], Awaitable[None]] | None = None
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _schedule_like_fd2()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if close is not None:
                await close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _schedule_like_fd2() -> None:
    choice = os.environ.get("FLOOR_CPU_SCHEDULING", "normal")
    if choice not in ("batch", "normal"):
        raise SystemExit(f"FLOOR_CPU_SCHEDULING: batch or normal, not {choice!r}")
    refused = schedule_worker_threads(
        "batch" if choice == "batch" else "normal", asyncio.get_running_loop()
    )
    if refused is not None:
        raise SystemExit(refused)
