"""A job of a Control Tower project survives its fd2 killed mid-job, run by an fd2 that has never
served that project (Control Tower projects are loaded on demand: the worker loads it itself)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import redis

from ..conftest import REPO, Service, free_port, start_service
from ..leaks import LEAKS
from ..redis_server import RedisServer
from ..support import wait_until
from .conftest import CHAT, wait_job

CT_SECRET = "jobs-control-tower-secret-0461"
UPSTREAM_KEY = "jobs-upstream-key-0462"
LEAKS.add_secret(CT_SECRET)
LEAKS.add_secret(UPSTREAM_KEY)


def _fd2(name: str, tmp_path: Path, ct_port: int, redis_url: str, standin: Service) -> Service:
    secret_file = tmp_path / "ct_secret"
    secret_file.write_text(CT_SECRET + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FD2_")}
    env.update(
        FD2_CONTROL_TOWER=f"http://127.0.0.1:{ct_port}",
        FD2_CONTROL_TOWER_SECRET_REF=f"file:{secret_file}",
        FD2_REDIS_URL=redis_url,
        FD2_JOBS_VISIBILITY_TIMEOUT="2",
        FD2_MANIFEST_ENV_ALLOW="FD2_DEMO_UPSTREAM",
        FD2_DEMO_UPSTREAM=f"{standin.url}/v1",
        FD2_DEMO_API_KEY=UPSTREAM_KEY,
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    fd2 = str(Path(sys.executable).with_name("fd2"))
    argv = [fd2, "serve", "--host", "127.0.0.1", "--port", str(port)]
    return start_service(name, argv, port=port, ready_path="/healthz", log_dir=tmp_path, env=env)


def test_a_control_tower_projects_job_runs_on_a_worker_that_never_served_it(
    tmp_path: Path, standin: Service, redis_server: RedisServer
) -> None:
    ct_port = free_port()
    ct_argv = [sys.executable, str(REPO / "tests/standins/control_tower.py")]
    ct_argv += ["--port", str(ct_port), "--manifests", str(REPO / "examples/demo")]
    ct_argv += ["--secret", CT_SECRET]
    tower = start_service(
        "control-tower", ct_argv, port=ct_port, ready_path="/_ct/stats", log_dir=tmp_path
    )
    first = second = None
    try:
        first = _fd2("fd2-ct-1", tmp_path, ct_port, redis_server.url, standin)
        with httpx.Client(base_url=f"{first.url}/demo/chat", timeout=10) as client:
            body = {**CHAT, "model": "slow-4000"}
            submitted = client.post(
                "/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": body}
            )
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["job_id"]
            wait_until(
                lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "running",
                timeout=10,
                what="the job to start",
            )
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait(5)
        second = _fd2("fd2-ct-2", tmp_path, ct_port, redis_server.url, standin)
        # Watched in Redis, not through the new fd2: a request for the project would load it.
        key = f"fd2:jobs:job:demo:{job_id}"
        with redis.Redis.from_url(redis_server.url) as store:
            status = wait_until(
                lambda: (s := store.hget(key, "status")) in (b"succeeded", b"failed") and s,
                timeout=30,
                what="the job to end",
            )
            assert status == b"succeeded", store.hgetall(key)
            assert store.hget(key, "attempts") == b"2"
        with httpx.Client(base_url=f"{second.url}/demo/chat", timeout=10) as client:
            job = wait_job(client, job_id)
        assert job["result"]["status_code"] == 200
    finally:
        for service in (second, first, tower):
            if service is not None:
                service.stop()
