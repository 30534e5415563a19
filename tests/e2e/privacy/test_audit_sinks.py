"""The audit sinks' bounds and failures, with real processes: a Redis Stream trimmed to its
bound by XADD MAXLEN ~, and an fd2 whose audit file cannot be written that still serves every
request, counts the lost records in /metrics and logs the failure once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import redis
import redis.asyncio

from fd2.audit.sinks import StreamSink

from ..conftest import Service, fd2_argv, fd2_env, free_port, start_service
from ..redis_server import running_redis


def test_the_stream_stays_near_its_bound(tmp_path: Path) -> None:
    with running_redis(tmp_path) as url:
        plain = redis.Redis.from_url(url)
        # Small stream nodes, so an approximate trim can act at this scale (default: 100).
        plain.config_set("stream-node-max-entries", 10)

        async def write() -> None:
            client = redis.asyncio.Redis.from_url(url)
            sink = StreamSink(client, "fd2:audit-bound", maxlen=50)
            try:
                for batch in range(20):
                    await sink.write([b'{"n":%d}' % (batch * 25 + i) for i in range(25)])
            finally:
                await client.aclose()

        asyncio.run(write())
        length = plain.xlen("fd2:audit-bound")
        newest = plain.xrevrange("fd2:audit-bound", count=1)[0][1][b"record"]
        plain.close()
    assert 50 <= length <= 60
    assert json.loads(newest) == {"n": 499}


def test_a_broken_sink_never_fails_a_request(tmp_path: Path, standin: Service) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    raw = {
        "project": "audited",
        "module": "chat",
        "module_type": "inference_openai",
        "auth": {"mode": "none"},
        "runtime": {"type": "python:3.11", "implementation": "fd2_inference.InferenceModule"},
        "endpoints": {"dev": {"primary": f"http://{standin.address}/v1"}},
        "configuration_references": [
            {"name": "api_key", "source": "env:BILLING_UPSTREAM_API_KEY", "required": True}
        ],
        "default_environment": "dev",
        "audit": {},
    }
    (manifests / "chat.module.json").write_text(json.dumps(raw))
    not_a_file = tmp_path / "audit-is-a-directory"
    not_a_file.mkdir()
    port = free_port()
    argv = fd2_argv(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--manifests", str(manifests),
        "--default-env", "development", "--audit-file", str(not_a_file),
    )  # fmt: skip
    service = start_service(
        "fd2-audit-broken", argv, port=port, ready_path="/healthz", log_dir=tmp_path,
        env=fd2_env(),
    )  # fmt: skip
    try:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=service.url, timeout=30) as client:
            for _ in range(5):
                answer = client.post("/audited/chat/v1/chat/completions", json=body)
                assert answer.status_code == 200
            deadline = 50
            dropped = 0.0
            while deadline:
                metrics = client.get("/metrics").text
                lines = [
                    line
                    for line in metrics.splitlines()
                    if line.startswith('fd2_audit_dropped_total{sink="file"}')
                ]
                dropped = float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0
                if dropped >= 5:
                    break
                deadline -= 1
                time.sleep(0.1)
        assert dropped == 5
    finally:
        service.stop()
    log = service.stderr_path.read_text()
    assert log.count("audit: the file sink failed") == 1, log[-3000:]
