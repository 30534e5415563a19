"""Routing figures (docs/routing.md): failover, hedging, least in flight, the retry budget.

Run: `.venv/bin/python bench/routing.py [--quick]` (or `make bench-routing`). Starts OpenAI
stand-ins (tests/standins/openai_upstream.py) and one fd2 worker on loopback, then a closed-loop
load of `concurrency` clients (aiohttp, in this process) per scenario:

1. failover: two targets behind one alias at c=64, one stand-in killed (SIGKILL) mid-run: client
   errors, and the p99 in the second after the kill against the p99 before it;
2. hedging: targets with a 5% slow tail (500 ms): p99 without hedging and with it (same run);
3. least in flight against round robin: a fast target and a slow (200 ms) one: requests/s;
4. budget: every target failing: upstream attempts per client request (at most 1.2 + 10/N);
5. overhead: one target behind an alias against a plain single-upstream module, nothing failing.

Figures, not a timed test: everything shares this machine's cores (nothing pinned), so read
the ratios, not the absolute numbers. `--quick` runs each scenario for ~2 s (the smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from procs import ROOT, Processes, free_port, wait_http

STANDIN = ROOT / "tests" / "standins" / "openai_upstream.py"
FD2 = Path(sys.executable).parent / "fd2"
KEY = "${environments.${environment}.secrets.up_key}"
MESSAGES = [{"role": "user", "content": "hi"}]


def _target(port: int, model: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": f"http://127.0.0.1:{port}/v1", "model": model, "api_key": KEY, **extra}


def _manifest(
    deployments: dict[str, Any], routing: dict[str, Any], plain_port: int | None = None
) -> dict[str, Any]:
    modules: list[dict[str, Any]] = [
        {"module_type": "inference_endpoint", "name": "chat", "config": {}}
    ]
    overlay: dict[str, Any] = {}
    if plain_port is not None:  # a single-upstream module beside it, for the overhead figure
        url = f"http://127.0.0.1:{plain_port}/v1/chat/completions"
        modules.append(
            {"module_type": "inference_endpoint", "name": "plain", "config": {"endpoint_url": url}}
        )
        overlay["plain"] = {
            "auth": {"mode": "none"},
            "config": {"api_key": KEY, "timeouts": {"read_s": 5}},
        }
    return {
        "project_id": "bench",
        "version": "1",
        "environment": "development",
        "environments": {"development": {"secrets": {"up_key": "env:BENCH_UPSTREAM_KEY"}}},
        "modules": modules,
        "metadata": {
            "fd2": {
                "modules": {
                    "chat": {
                        "auth": {"mode": "none"},
                        "config": {
                            "deployments": deployments,
                            "routing": routing,
                            "timeouts": {"read_s": 5},
                        },
                    },
                    **overlay,
                }
            }
        },
    }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Load:
    """Closed-loop clients: each sends its next request when the last one answered."""

    def __init__(self, url: str, model: str, concurrency: int) -> None:
        self.url = url
        self.model = model
        self.concurrency = concurrency
        self.samples: list[tuple[float, float, int]] = []
        """(start, latency s, status; 0 for a transport error)."""

    async def run(self, seconds: float) -> None:
        body = json.dumps({"model": self.model, "messages": MESSAGES}).encode()
        headers = {"content-type": "application/json"}
        limit = aiohttp.TCPConnector(limit=self.concurrency)
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession(connector=limit) as session:

            async def client() -> None:
                while time.monotonic() < deadline:
                    began = time.monotonic()
                    try:
                        async with session.post(self.url, data=body, headers=headers) as answer:
                            await answer.read()
                            status = answer.status
                    except aiohttp.ClientError:
                        status = 0
                    self.samples.append((began, time.monotonic() - began, status))

            await asyncio.gather(*(client() for _ in range(self.concurrency)))

    def errors(self) -> int:
        return sum(1 for _, _, status in self.samples if status != 200)

    def latencies(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        return [took for began, took, _ in self.samples if start <= began < end]

    def rps(self, seconds: float) -> float:
        return len(self.samples) / seconds


class Bench:
    def __init__(self, procs: Processes, logs: Path) -> None:
        self.procs = procs
        self.logs = logs

    def standin(self, name: str) -> tuple[int, Any]:
        port = free_port()
        child = self.procs.start(
            [sys.executable, str(STANDIN), "--host", "127.0.0.1", "--port", str(port)],
            log=self.logs / f"{name}.log",
        )
        wait_http(f"http://127.0.0.1:{port}/_standin/stats", child, name)
        return port, child

    def fd2(
        self,
        deployments: dict[str, Any],
        routing: dict[str, Any] | None = None,
        plain_port: int | None = None,
    ) -> tuple[str, Any]:
        directory = Path(tempfile.mkdtemp(dir=self.logs))
        manifest = _manifest(deployments, routing or {}, plain_port)
        (directory / "bench.json").write_text(json.dumps(manifest))
        port = free_port()
        env = {**os.environ, "BENCH_UPSTREAM_KEY": "bench-upstream-key"}
        argv = [str(FD2), "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--manifests", str(directory), "--workers", "1", "--log-level", "warning"]
        child = self.procs.start(argv, env=env, log=self.logs / "fd2.log")
        wait_http(f"http://127.0.0.1:{port}/healthz", child, "fd2")
        return f"http://127.0.0.1:{port}/bench/chat/v1/chat/completions", child


def _stats(port: int) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_standin/stats", timeout=5) as answer:
        return dict(json.loads(answer.read()))


async def failover(bench: Bench, seconds: float) -> dict[str, Any]:
    a, _ = bench.standin("failover-a")
    b, b_child = bench.standin("failover-b")
    url, fd2 = bench.fd2({"pair": {"targets": [_target(a, "gpt-4o-mini"), _target(b, "gpt-4o")]}})
    await Load(url, "pair", 64).run(1.0)  # warm-up: connections, first-request costs
    load = Load(url, "pair", 64)
    killed_at = 0.0

    async def kill() -> None:
        nonlocal killed_at
        await asyncio.sleep(seconds / 2)
        killed_at = time.monotonic()
        os.killpg(b_child.pid, signal.SIGKILL)

    await asyncio.gather(load.run(seconds), kill())
    bench.procs.stop(fd2)
    return {
        "requests": len(load.samples),
        "client_errors": load.errors(),
        "p99_before_ms": round(1000 * _percentile(load.latencies(end=killed_at), 0.99), 1),
        "p99_switch_ms": round(
            1000 * _percentile(load.latencies(killed_at, killed_at + 1.0), 0.99), 1
        ),
        "p99_after_ms": round(1000 * _percentile(load.latencies(start=killed_at + 1.0), 0.99), 1),
    }


async def hedging(bench: Bench, seconds: float) -> dict[str, Any]:
    port, _ = bench.standin("hedging")
    tail = "slow-500-tail-5"
    targets = [_target(port, tail, name="one"), _target(port, tail, name="two")]
    url, fd2 = bench.fd2(
        {
            "plain": {"targets": targets},
            "hedged": {"targets": targets, "hedge": {"delay_ms": 150}},
            "hedged-p95": {"targets": targets, "hedge": {"min_delay_ms": 50}},
        }
    )
    figures: dict[str, Any] = {}
    for alias in ("plain", "hedged", "hedged-p95"):
        await Load(url, alias, 16).run(1.0)  # warm-up (and the p95 the last alias hedges at)
        load = Load(url, alias, 16)
        await load.run(seconds)
        figures[alias] = {
            "requests": len(load.samples),
            "p50_ms": round(1000 * statistics.median(load.latencies()), 1),
            "p99_ms": round(1000 * _percentile(load.latencies(), 0.99), 1),
            "errors": load.errors(),
        }
    bench.procs.stop(fd2)
    return figures


async def least_in_flight(bench: Bench, seconds: float) -> dict[str, Any]:
    port, _ = bench.standin("lif")
    targets = [_target(port, "gpt-4o-mini", name="fast"), _target(port, "slow-200", name="slow")]
    url, fd2 = bench.fd2(
        {
            "rr": {"targets": targets, "strategy": "round_robin"},
            "lif": {"targets": targets, "strategy": "least_in_flight"},
        }
    )
    figures: dict[str, Any] = {}
    for alias in ("rr", "lif"):
        load = Load(url, alias, 64)
        await load.run(seconds)
        figures[f"{alias}_rps"] = round(load.rps(seconds), 1)
        figures[f"{alias}_p50_ms"] = round(1000 * statistics.median(load.latencies()), 1)
        figures[f"{alias}_errors"] = load.errors()
    bench.procs.stop(fd2)
    return figures


async def overhead(bench: Bench, seconds: float) -> dict[str, Any]:
    """One target behind an alias against the same upstream as a plain module (c=32): what the
    attempt loop costs when nothing fails."""
    port, _ = bench.standin("overhead")
    url, fd2 = bench.fd2({"one": {"targets": [_target(port, "gpt-4o-mini")]}}, plain_port=port)
    plain_url = url.replace("/bench/chat/", "/bench/plain/")
    figures: dict[str, Any] = {}
    for label, target_url, model in (("plain", plain_url, "gpt-4o-mini"), ("alias", url, "one")):
        await Load(target_url, model, 32).run(1.0)
        load = Load(target_url, model, 32)
        await load.run(seconds)
        figures[label] = {
            "rps": round(load.rps(seconds), 1),
            "p50_ms": round(1000 * statistics.median(load.latencies()), 2),
            "errors": load.errors(),
        }
    bench.procs.stop(fd2)
    return figures


async def budget(bench: Bench, seconds: float) -> dict[str, Any]:
    """Every target failing, with the breakers (they open: retries find no target) and with
    them kept shut (every failure asks for a retry: the budget alone bounds them)."""
    figures: dict[str, Any] = {}
    never = {"consecutive_failures": 10**9, "min_requests": 10**9}
    for label, routing in (("breakers", {}), ("budget_alone", {"breaker": never})):
        port, child = bench.standin(f"budget-{label}")
        targets = [_target(port, "error-500-plain", name=f"broken{i}") for i in range(3)]
        url, fd2 = bench.fd2({"broken": {"targets": targets}}, routing)
        load = Load(url, "broken", 64)
        await load.run(seconds)
        attempts = _stats(port)["started"]
        bench.procs.stop(fd2)
        bench.procs.stop(child)
        requests = len(load.samples)
        figures[label] = {
            "requests": requests,
            "upstream_attempts": attempts,
            "attempts_per_request": round(attempts / requests, 3),
        }
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="one scenario by name (e.g. overhead)")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 8.0
    logs = Path(tempfile.mkdtemp(prefix="fd2-bench-routing-"))
    results: dict[str, Any] = {}
    with Processes() as procs:
        bench = Bench(procs, logs)
        for name, scenario in (
            ("failover", failover),
            ("hedging", hedging),
            ("least_in_flight", least_in_flight),
            ("budget", budget),
            ("overhead", overhead),
        ):
            if args.only and name != args.only:
                continue
            results[name] = await scenario(bench, seconds)
            print(name, json.dumps(results[name]), flush=True)
    print(f"logs in {logs}")


if __name__ == "__main__":
    asyncio.run(main())
