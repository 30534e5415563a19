"""Redis key names of the job machinery, in one place (every replica must agree on them)."""

from __future__ import annotations

from typing import Final

PREFIX: Final = "fd2:jobs"
STREAM: Final = f"{PREFIX}:stream"
"""Work to do: `kind` (run, deliver, expand, finalize, cancel_batch), `project`, `id`."""
GROUP: Final = "fd2-jobs"
DELAYED: Final = f"{PREFIX}:delayed"
"""Work due later (retries, webhook back-off): a sorted set by due time (ms)."""
DEAD: Final = f"{PREFIX}:dead"
"""Webhook deliveries given up on: a bounded stream for operators."""


def job(project: str, job_id: str) -> str:
    return f"{PREFIX}:job:{project}:{job_id}"


def index(project: str, module: str) -> str:
    """The jobs submitted through one module's route, by creation time (ms), for listing."""
    return f"{PREFIX}:index:{project}:{module}"


def running(project: str) -> str:
    """The project's running jobs, scored by lease deadline (ms): the concurrency slots."""
    return f"{PREFIX}:running:{project}"


def file(project: str, file_id: str) -> str:
    return f"{PREFIX}:file:{project}:{file_id}"


def file_content(project: str, file_id: str) -> str:
    return f"{PREFIX}:file:{project}:{file_id}:content"


def files_index(project: str, module: str) -> str:
    """The files uploaded or written through one module's route, by creation time."""
    return f"{PREFIX}:files:{project}:{module}"


def batch(project: str, batch_id: str) -> str:
    return f"{PREFIX}:batch:{project}:{batch_id}"


def batches_index(project: str, module: str) -> str:
    return f"{PREFIX}:batches:{project}:{module}"
