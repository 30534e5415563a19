"""Figures of the job machinery (docs/jobs.md): submission rate and latency, end-to-end job
throughput, one job's time from submit to result, and recovery after fd2 is killed mid-job.

Starts its own redis-server, the Python OpenAI stand-in (answers at once) and fd2 (one Granian
worker) on loopback: `python bench/jobs.py [--jobs 2000]`. About a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from procs import ROOT, Processes, free_port, wait_http

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
TERMINAL = ("succeeded", "failed", "cancelled", "expired")


def manifest(upstream: str) -> dict[str, Any]:
    return {
        "auth": {"mode": "none"},
        "project": "bench",
        "module": "chat",
        "module_type": "inference_openai",
        "version": "1.0.0",
        "runtime": {"type": "python:3.11", "implementation": "fd2_inference.InferenceModule"},
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": [{"name": "api_key", "source": "env:BENCH_KEY"}],
        "api_schema": {"openapi_ref": "openai:v1", "endpoints": ["/v1/chat/completions"]},
        "default_environment": "dev",
    }


class Bench:
    def __init__(self, procs: Processes, work: Path) -> None:
        self.procs = procs
        self.work = work
        self.redis_port = free_port()
        self.fd2: Any = None
        self.port = 0

    def start_redis(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.work)]
        self.procs.start(argv, log=self.work / "redis.log")
        time.sleep(0.5)

    def start_standin(self) -> str:
        port = free_port()
        script = ROOT / "tests" / "standins" / "openai_upstream.py"
        child = self.procs.start(
            [sys.executable, str(script), "--host", "127.0.0.1", "--port", str(port)],
            log=self.work / "standin.log",
        )
        wait_http(f"http://127.0.0.1:{port}/_standin/stats", child, "the stand-in")
        return f"127.0.0.1:{port}"

    def start_fd2(self, manifests: Path, **settings: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FD2_")}
        env.update(
            BENCH_KEY="bench-upstream-key",
            FD2_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            FD2_JOBS_PROJECT_CONCURRENCY="64",
            **settings,
        )
        fd2 = str(Path(sys.executable).with_name("fd2"))
        argv = [fd2, "serve", "--port", str(self.port), "--manifests", str(manifests)]
        self.fd2 = self.procs.start(argv, env=env, log=self.work / "fd2.log")
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.fd2, "fd2")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/bench/chat"


async def submit_all(base: str, count: int, concurrency: int) -> tuple[list[str], list[float]]:
    ids: list[str] = []
    latencies: list[float] = []
    queue = iter(range(count))
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def one_worker() -> None:
            for _ in queue:
                began = time.perf_counter()
                answer = await client.post(
                    "/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": CHAT}
                )
                latencies.append(time.perf_counter() - began)
                assert answer.status_code == 202, answer.text
                ids.append(answer.json()["job_id"])

        await asyncio.gather(*(one_worker() for _ in range(concurrency)))
    return ids, latencies


async def wait_all(base: str, ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        pending = set(ids)
        while pending:
            for job_id in list(pending)[:200]:
                job = (await client.get(f"/v1/jobs/{job_id}")).json()
                if job["status"] in TERMINAL:
                    assert job["status"] == "succeeded", job
                    pending.discard(job_id)
            await asyncio.sleep(0.05)


async def one_job_latency(base: str, rounds: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _ in range(rounds):
            began = time.perf_counter()
            answer = await client.post(
                "/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": CHAT}
            )
            job_id = answer.json()["job_id"]
            while True:  # polling, as a client does
                if (await client.get(f"/v1/jobs/{job_id}")).json()["status"] in TERMINAL:
                    break
                await asyncio.sleep(0.01)
            times.append(time.perf_counter() - began)
    return times


def ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, Processes() as procs:
        work = Path(tmp)
        bench = Bench(procs, work)
        bench.start_redis()
        upstream = bench.start_standin()
        manifests = work / "manifests"
        manifests.mkdir()
        (manifests / "bench.module.json").write_text(json.dumps(manifest(upstream)))
        bench.start_fd2(manifests, FD2_JOBS_WORKERS="16", FD2_JOBS_VISIBILITY_TIMEOUT="5")

        asyncio.run(one_job_latency(bench.base, 3))  # warm-up: first upstream connections
        lat = asyncio.run(one_job_latency(bench.base, 50))
        rows.append(
            ("one job, submit to result seen (p50 / p99 ms)", f"{ms(lat, 0.5)} / {ms(lat, 0.99)}")
        )

        began = time.perf_counter()
        ids, submit = asyncio.run(submit_all(bench.base, args.jobs, 16))
        submitted = time.perf_counter() - began
        asyncio.run(wait_all(bench.base, ids))
        done = time.perf_counter() - began
        rows.append(
            (f"submit {args.jobs} jobs, 16 clients (jobs/s)", f"{args.jobs / submitted:.0f}")
        )
        rows.append(("submit latency (p50 / p99 ms)", f"{ms(submit, 0.5)} / {ms(submit, 0.99)}"))
        rows.append(
            (
                f"{args.jobs} jobs submitted and run, 16 job slots (jobs/s)",
                f"{args.jobs / done:.0f}",
            )
        )

        async def slow_job() -> str:
            async with httpx.AsyncClient(base_url=bench.base, timeout=30) as client:
                body = {**CHAT, "model": "slow-2000"}
                answer = await client.post(
                    "/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": body}
                )
                job_id: str = answer.json()["job_id"]
                while True:
                    if (await client.get(f"/v1/jobs/{job_id}")).json()["status"] == "running":
                        break
                    await asyncio.sleep(0.01)
                return job_id

        job_id = asyncio.run(slow_job())
        killed = time.perf_counter()
        os.killpg(bench.fd2.pid, signal.SIGKILL)
        bench.fd2.wait()
        procs.children.remove(bench.fd2)
        bench.start_fd2(manifests, FD2_JOBS_WORKERS="16", FD2_JOBS_VISIBILITY_TIMEOUT="5")
        restarted = time.perf_counter() - killed
        asyncio.run(wait_all(bench.base, [job_id]))
        recovered = time.perf_counter() - killed
        rows.append(("fd2 SIGKILLed mid-job: restart ready (s)", f"{restarted:.1f}"))
        rows.append(
            (
                "... job done after the kill (s; visibility 5 s, 2 s upstream call)",
                f"{recovered:.1f}",
            )
        )
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(
        f"\n{statistics.median(lat) * 1000:.1f} ms median one-job latency; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
