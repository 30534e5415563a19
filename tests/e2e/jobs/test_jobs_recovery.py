"""No job is lost and none gets two results: fd2 killed mid-job, a replica frozen mid-job.

At-least-once: the job's module call may run again (the stand-in sees it twice); its result and
its webhook are written once.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from ..hardening import wait_for, worker_pids
from ..redis_server import RedisServer
from ..support import wait_until
from .conftest import CHAT, Gateway, start_receiver, wait_job

SLOW = {**CHAT, "model": "slow-4000"}


def _running(gateway: Gateway, job_id: str) -> bool:
    with gateway.client() as client:
        return bool(client.get(f"/v1/jobs/{job_id}").json()["status"] == "running")


def _ended(gateway: Gateway, job_id: str) -> dict[str, Any] | None:
    try:
        job: dict[str, Any] = httpx.get(
            f"{gateway.url}/alpha/chat/v1/jobs/{job_id}", timeout=5
        ).json()
    except httpx.TransportError:
        return None
    return job if job["status"] in ("succeeded", "failed", "cancelled", "expired") else None


def test_a_job_survives_fd2_killed_mid_job(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        submitted = client.post("/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": SLOW})
        job_id = submitted.json()["job_id"]
    wait_until(lambda: _running(gateway, job_id), timeout=10, what="the job to start")
    assert gateway.service is not None
    os.killpg(gateway.service.proc.pid, signal.SIGKILL)  # no shutdown: the job is held, unacked
    gateway.service.proc.wait(5)
    gateway.service = None
    gateway.start()
    with gateway.client() as client:
        job = wait_job(client, job_id, timeout=30)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2  # the first start died with its process
        assert job["result"]["status_code"] == 200
        listed = client.get("/v1/jobs").json()["data"]
    assert [entry["job_id"] for entry in listed] == [job_id]


def test_a_job_survives_a_graceful_restart(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        submitted = client.post("/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": SLOW})
        job_id = submitted.json()["job_id"]
    wait_until(lambda: _running(gateway, job_id), timeout=10, what="the job to start")
    gateway.stop()  # SIGTERM: the worker gives the job back before it exits
    gateway.start()
    with gateway.client() as client:
        job = wait_job(client, job_id, timeout=30)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1  # given back, not counted as an interruption


def test_a_frozen_replicas_job_is_claimed_again_and_written_once(
    gateway: Gateway, redis_server: RedisServer, tmp_path: Path
) -> None:
    receiver = start_receiver(tmp_path)
    try:
        gateway.start()
        first = gateway.service
        assert first is not None
        with gateway.client() as client:
            submitted = client.post(
                "/v1/jobs",
                json={
                    "endpoint": "/v1/chat/completions",
                    "body": SLOW,
                    "webhook": {"url": receiver.url},
                },
            )
            job_id = submitted.json()["job_id"]
        wait_until(lambda: _running(gateway, job_id), timeout=10, what="the job to start")
        os.killpg(first.proc.pid, signal.SIGSTOP)  # alive but silent: its lease runs out
        try:
            gateway.service = None
            second = gateway.start()
            with gateway.client() as client:
                wait_until(
                    lambda: client.get(f"/v1/jobs/{job_id}").json()["attempts"] == 2,
                    timeout=15,
                    what="the second replica to claim the job",
                )
        finally:
            os.killpg(first.proc.pid, signal.SIGCONT)
        with gateway.client() as client:
            job = wait_job(client, job_id, timeout=30)
            time.sleep(6)  # both replicas' calls have answered by now
            later = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == later["status"] == "succeeded"
        assert later["result"] == job["result"]
        assert later["completed_at"] == job["completed_at"]
        deliveries = receiver.received()
        assert len(deliveries) == 1, deliveries  # one terminal write, one webhook
        gateway.service = second
        first.stop()
    finally:
        receiver.service.stop()


def test_work_that_keeps_failing_is_dead_lettered_and_stalls_nothing(
    gateway: Gateway, redis_server: RedisServer
) -> None:
    gateway.start()
    with redis.Redis.from_url(redis_server.url) as store:
        # A job record missing its fields (as a bug or a hand edit could leave one).
        store.hset("fd2:jobs:job:alpha:job_broken", mapping={"status": "queued", "id": "x"})
        store.xadd("fd2:jobs:stream", {"kind": "run", "project": "alpha", "id": "job_broken"})
        with gateway.client() as client:
            answer = client.post(
                "/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": CHAT}
            )
            assert wait_job(client, answer.json()["job_id"])["status"] == "succeeded"
        dead = wait_until(
            lambda: [e for e in store.xrange("fd2:jobs:dead") if e[1][b"id"] == b"job_broken"],
            timeout=40,
            what="the broken work to be dead-lettered",
        )
        assert dead[0][1][b"kind"] == b"run"
        wait_until(
            lambda: store.xpending("fd2:jobs:stream", "fd2-jobs")["pending"] == 0,
            timeout=5,
            what="the broken work to be acknowledged",
        )
        assert store.hget("fd2:jobs:job:alpha:job_broken", "status") == b"failed"


def test_a_job_survives_its_granian_worker_killed(gateway: Gateway) -> None:
    # One job slot per worker process: two running jobs are one on each worker.
    service = gateway.start(FD2_WORKERS="2", FD2_JOBS_WORKERS="1")
    assert wait_for(lambda: len(worker_pids(service.proc.pid)) == 2, timeout=20)
    with gateway.client() as client:
        jobs = [
            client.post("/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": SLOW}).json()[
                "job_id"
            ]
            for _ in range(2)
        ]
        wait_until(
            lambda: all(client.get(f"/v1/jobs/{j}").json()["status"] == "running" for j in jobs),
            timeout=10,
            what="the jobs to start on both workers",
        )
        victim = worker_pids(service.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)  # its job is held by a consumer that is gone
    # A new connection each time: one kept alive may have been to the worker killed.
    ended = [wait_until(lambda j=j: _ended(gateway, j), timeout=40, what=f"job {j}") for j in jobs]
    assert all(job["status"] == "succeeded" for job in ended), ended
    attempts = sorted(job["attempts"] for job in ended)
    assert attempts == [1, 2], attempts  # the victim's job ran again, the other's once
