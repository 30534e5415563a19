"""What auth and rate limiting add to a request: the steps of a compiled route, timed alone.

Run: `.venv/bin/python bench/auth_cost.py [--quick]`. Routes are compiled from a manifest the way
the gateway compiles them, their steps composed with an (empty) handler and the inference
module's chat meter; each case times the composed handler against calling the same handler
directly, and prints p50/p99 of the difference in µs. The Redis cases start a
redis-server of their own on a free loopback port (installed by `make redis-server`).

Targets (issue 6): at most 50 µs at p50 with the in-process limiter; with Redis, one round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import orjson
import uvloop

from fd2.auth.api_keys import KeyHasher
from fd2.control.manifests.compile import declarations
from fd2.control.manifests.decode import decode_manifest
from fd2.control.secrets import SecretResolver
from fd2.limits.gcra import LocalLimiter
from fd2.limits.redis_client import make_redis
from fd2.limits.shared import SharedLimiter
from fd2.limits.specs import specs_for
from fd2.module import Handler
from fd2.pipeline.compiler import StepCompiler
from fd2.serving.request import Request
from fd2_inference.metering import CHAT, OpenAIMeter
from fd2_inference.transforms import Defaults, prepare_chat

SECRET = "bench-jwt-secret-" * 4
PEPPER = b"bench-pepper"
KEY = "fd2_bench-key-000000000000000000000000000"
BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 20}]}
)
# Limits far above what the loop can reach: every request is admitted, as in steady state.
LIMITS = {"requests_per_second": 10_000_000, "requests_per_minute": 600_000_000}


def manifest() -> bytes:
    def module(name: str, auth: dict[str, Any], limits: dict[str, int]) -> dict[str, Any]:
        return {
            "module_type": "inference_endpoint",
            "name": name,
            "dependencies": ["auth"],
            "auth": auth,
            "limits": limits,
            "config": {"model_name": "gpt-4o-mini"},
        }

    digest = hmac.new(PEPPER, KEY.encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "project_id": "bench",
            "environment": "development",
            "environments": {"development": {}},
            "api_keys": [{"id": "bench", "hash": digest, "models": ["gpt-4o-mini"]}],
            "modules": [
                {"module_type": "jwt_config", "name": "auth", "config": {"secret_key": SECRET}},
                module("key", {"mode": "api_key"}, LIMITS),
                module("jwt", {"mode": "jwt"}, LIMITS),
                module("tokens", {"mode": "api_key"}, {**LIMITS, "tokens_per_minute": 10**12}),
            ],
        }
    ).encode()


def token(jti: int = 0) -> str:
    now = int(time.time())
    claims = {
        "jti": str(jti),
        "sub": "bench",
        "iat": now,
        "exp": now + 3600,
        "type": "access",
        "project": "bench",
        "environment": "development",
        "models": ["gpt-4o-mini"],
        "rate_limit": 600_000_000,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def fresh_tokens() -> Callable[[], str]:
    counter = iter(range(1, 10**9))
    return lambda: token(next(counter))


def composed(compiler: StepCompiler) -> dict[str, Handler]:
    found = declarations(decode_manifest(manifest(), origin="bench"), origin="b", default_env="dev")
    peers = {d.module: d for d in found}
    config = {"model_name": "gpt-4o-mini"}
    defaults = Defaults(model="gpt-4o-mini")
    meter = OpenAIMeter(CHAT, lambda body: prepare_chat(body, defaults), None)
    path = "/v1/chat/completions"
    handlers = {path: {"POST": handler}}
    return {
        name: compiler.compile(peers[name], "development", peers, config).apply(
            handlers, {path: meter}
        )[path]["POST"]
        for name in ("key", "jwt", "tokens")
    }


def request_factory(credential: str | Callable[[], str] | None) -> Callable[[], Request]:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    if isinstance(credential, str):
        headers.append((b"authorization", b"Bearer " + credential.encode()))
    scope = {"type": "http", "method": "POST", "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    def make() -> Request:
        fresh = scope
        if callable(credential):  # a token never seen before: full signature and claim checks
            auth = (b"authorization", b"Bearer " + credential().encode())
            fresh = {**scope, "headers": [*headers, auth]}
        return Request(
            fresh,
            receive,
            request_id="bench",
            project="bench",
            module="m",
            environment="development",
            path="/v1/chat/completions",
            content_length=len(BODY),
            max_body=1 << 20,
        )

    return make


async def send(message: Any) -> None:
    return None


async def handler(request: Request, send_: Any) -> None:
    # What a module does first: read and decode the body (shared with the gate's decoding).
    await request.json_object()
    # What the core's `send` wrapper records when an answer starts: without it the token-limits
    # step reads "no answer" and gives the whole reservation back (a second Redis call that a
    # served request does not make).
    request.status = 200
    await send_({"type": "http.response.start", "status": 200, "headers": []})
    await send_({"type": "http.response.body", "body": b"{}"})


async def time_case(route: Handler, make: Callable[[], Request], n: int) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        request = make()
        began = clock()
        await route(request, send)
        samples.append((clock() - began) / 1000)
    return samples


async def run_suite(limiter: Any, label: str, n: int) -> None:
    async with aiohttp.ClientSession() as http:
        compiler = StepCompiler(
            secrets=SecretResolver(environ={}),
            environ={},
            http=http,
            limiter=limiter,
            hasher=KeyHasher(PEPPER),
        )
        compiled = composed(compiler)
        cases = {
            "api key + request limits": (compiled["key"], request_factory(KEY)),
            "JWT HS256 (verified before) + limits": (compiled["jwt"], request_factory(token())),
            "JWT HS256 (first use) + limits": (compiled["jwt"], request_factory(fresh_tokens())),
            "api key + request and token limits": (compiled["tokens"], request_factory(KEY)),
        }
        await time_case(handler, request_factory(None), n // 10)  # warm-up
        baseline = statistics.median(await time_case(handler, request_factory(None), n))
        print(f"\n{label}: handler alone p50 {baseline:.1f} µs")
        for name, (route, make) in cases.items():
            await time_case(route, make, n // 10)
            samples = sorted(await time_case(route, make, n))
            p50 = statistics.median(samples) - baseline
            p99 = samples[int(len(samples) * 0.99)] - baseline
            print(f"  {name:40s} added p50 {p50:7.1f} µs   p99 {p99:7.1f} µs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def redis_round_trip(url: str, n: int) -> float:
    client = make_redis(url)
    try:
        samples = []
        for _ in range(n):
            began = time.perf_counter_ns()
            await client.ping()
            samples.append((time.perf_counter_ns() - began) / 1000)
        return statistics.median(samples)
    finally:
        await client.aclose()


async def limiter_round_trip(limiter: SharedLimiter, n: int) -> float:
    specs = specs_for("bench-alone", LIMITS)
    samples = []
    for _ in range(n):
        began = time.perf_counter_ns()
        await limiter.acquire(specs, [1, 1])
        samples.append((time.perf_counter_ns() - began) / 1000)
    return statistics.median(samples)


async def main(quick: bool) -> None:
    n = 2_000 if quick else 20_000
    await run_suite(LocalLimiter(), "in-process limiter", n)
    server = shutil.which("redis-server")
    if server is None:
        print("\nredis-server not found: the Redis cases are skipped (make redis-server)")
        return
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220  # started once, before anything is timed
        ["timeout", "300", server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(200):
            try:
                await redis_round_trip(url, 1)
                break
            except Exception:
                await asyncio.sleep(0.02)
        ping = await redis_round_trip(url, n // 4)
        limiter = SharedLimiter(make_redis(url), on_failure="closed")
        check = await limiter_round_trip(limiter, n // 4)
        print(f"\nRedis round trips (redis-py, loopback): PING p50 {ping:.1f} µs, ", end="")
        print(f"one limiter check (EVALSHA, 2 buckets) p50 {check:.1f} µs")
        try:
            await run_suite(limiter, "shared limiter (Redis, one EVALSHA per request)", n // 4)
        finally:
            await limiter.aclose()
    finally:
        proc.terminate()
        proc.wait(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI smoke runs")
    uvloop.run(main(parser.parse_args().quick))
