"""`--cpu-scheduling`: fd2 serve puts itself, its Granian workers and every thread they start
under the chosen Linux policy, and requests are answered under either."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from .conftest import Service, build_manifest_dir, fd2_argv, fd2_env, free_port, start_service
from .hardening import start_fd2_with, wait_for, worker_pids
from .support import chat_body


def _policies(pids: list[int]) -> set[int]:
    """The scheduling policies of every thread of `pids`."""
    found: set[int] = set()
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                found.add(os.sched_getscheduler(int(tid)))
            except ProcessLookupError:
                continue
    return found


def _answers_a_chat(server: Service) -> None:
    answer = httpx.post(
        server.url + "/acme/chat/v1/chat/completions",
        content=chat_body(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_by_default_a_worker_runs_all_but_its_event_loop_as_batch(
    tmp_path: Path, standin: Service
) -> None:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    server = start_fd2_with(manifests, tmp_path, "--workers", "2", name="fd2-batch")
    try:
        assert wait_for(lambda: len(worker_pids(server.proc.pid)) == 2, timeout=20)
        _answers_a_chat(server)  # the workers' threads (Granian's and the loop's) are all up
        workers = worker_pids(server.proc.pid)
        assert _policies([server.proc.pid]) == {os.SCHED_BATCH}
        for worker in workers:
            # Its event loop (the worker's main thread) keeps the default policy; Granian's I/O
            # and Python-call threads, and fd2's background threads, run as batch.
            # (turned normal a second after start-up, once Granian has started its threads)
            assert wait_for(lambda w=worker: os.sched_getscheduler(w) == os.SCHED_OTHER, 10)
            others = [int(tid) for tid in os.listdir(f"/proc/{worker}/task") if int(tid) != worker]
            assert len(others) >= 2
            assert {os.sched_getscheduler(tid) for tid in others} == {os.SCHED_BATCH}
    finally:
        server.stop()


def test_normal_is_set_even_when_started_under_batch(tmp_path: Path, standin: Service) -> None:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    port = free_port()
    argv = fd2_argv(
        "serve", "--port", str(port), "--manifests", str(manifests), "--default-env", "development"
    )
    env = {**fd2_env(), "FD2_CPU_SCHEDULING": "normal"}
    # chrt (util-linux) execs fd2 in its own process: the policy fd2 starts with is batch.
    server = start_service(
        "fd2-normal",
        ["chrt", "-b", "0", *argv],
        port=port,
        ready_path="/healthz",
        log_dir=tmp_path,
        env=env,
    )
    try:
        _answers_a_chat(server)
        pids = [server.proc.pid, *worker_pids(server.proc.pid)]
        assert len(pids) == 2
        assert _policies(pids) == {os.SCHED_OTHER}
    finally:
        server.stop()
