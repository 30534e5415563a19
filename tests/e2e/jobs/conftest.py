"""Jobs, webhooks and batches over real processes: a redis-server of the test's own, fd2 under
Granian reading two projects (`alpha`, `beta`) that point at the OpenAI stand-in, and a webhook
receiver stand-in. Short timeouts (visibility 2 s, webhook back-off 0.2 s) keep the tests quick.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import LEAKS, Service, fd2_argv, fd2_env, free_port, start_service
from ..redis_server import RedisServer
from ..support import REPO

RECEIVER_SCRIPT = REPO / "tests" / "standins" / "webhook_receiver.py"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"jobs-e2e-signing-key-0123456789ab").decode()
LEAKS.add_secret(WEBHOOK_SECRET)
LEAKS.add_secret(WEBHOOK_SECRET.removeprefix("whsec_"))
PEPPER = "jobs-e2e-key-pepper"
GAMMA_KEY = "fd2_gamma-jobs-key-00000000000000000000000"
LEAKS.add_secret(PEPPER)
LEAKS.add_secret(GAMMA_KEY)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def module_manifest(project: str, upstream: str, module: str = "chat") -> dict[str, Any]:
    return {
        "auth": {"mode": "none"},
        "project": project,
        "module": module,
        "module_type": "inference_openai",
        "version": "1.0.0",
        "runtime": {"type": "python:3.11", "implementation": "fd2_inference.InferenceModule"},
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": [
            {"name": "api_key", "source": "env:BILLING_UPSTREAM_API_KEY", "required": True}
        ],
        "api_schema": {
            "openapi_ref": "openai:v1",
            "endpoints": ["/v1/chat/completions", "/v1/embeddings", "/v1/models"],
        },
        "config": {"jobs": {"webhook_secret": "env:JOBS_WEBHOOK_SECRET"}},
        "default_environment": "dev",
    }


def keyed_manifest(upstream: str) -> dict[str, Any]:
    """Project `gamma`: API keys, and a limit of one request a minute on its module."""
    raw = module_manifest("gamma", upstream)
    raw["auth"] = {"mode": "api_key"}
    raw["limits"] = {"requests_per_minute": 1}
    digest = hmac.new(PEPPER.encode(), GAMMA_KEY.encode(), hashlib.sha256).hexdigest()
    raw["api_keys"] = [{"id": "gamma-key", "hash": digest}]
    return raw


@dataclass
class Gateway:
    """fd2 with jobs on, restartable on the same manifests and Redis."""

    manifests: Path
    log_dir: Path
    redis_url: str
    settings: dict[str, str] = field(default_factory=dict)
    service: Service | None = None
    starts: int = 0

    def start(self, **settings: str) -> Service:
        self.settings.update(settings)
        self.starts += 1
        port = free_port()
        argv = fd2_argv(
            "serve", "--host", "127.0.0.1", "--port", str(port), "--manifests", str(self.manifests)
        )
        env = fd2_env()
        env.update(
            FD2_REDIS_URL=self.redis_url,
            FD2_DEFAULT_ENV="dev",
            FD2_JOBS_VISIBILITY_TIMEOUT="2",
            FD2_WEBHOOK_ALLOW_HTTP="true",
            FD2_WEBHOOK_ALLOW_PRIVATE="127.0.0.0/8",
            FD2_WEBHOOK_BACKOFF="0.2",
            FD2_WEBHOOK_MAX_ATTEMPTS="3",
            FD2_API_KEY_PEPPER_REF="env:JOBS_KEY_PEPPER",
            JOBS_KEY_PEPPER=PEPPER,
            JOBS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        env.update(self.settings)
        self.service = start_service(
            f"fd2-jobs-{self.starts}",
            argv,
            port=port,
            ready_path="/healthz",
            log_dir=self.log_dir,
            env=env,
        )
        return self.service

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    @property
    def url(self) -> str:
        assert self.service is not None
        return self.service.url

    def client(
        self, project: str = "alpha", key: str | None = None, module: str = "chat"
    ) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=f"{self.url}/{project}/{module}", timeout=10.0, headers=headers
        )


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway(tmp_path: Path, standin: Service, redis_server: RedisServer) -> Iterator[Gateway]:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for project in ("alpha", "beta"):
        text = json.dumps(module_manifest(project, standin.address), indent=2)
        (manifests / f"{project}.module.json").write_text(text)
    other = json.dumps(module_manifest("alpha", standin.address, "other"), indent=2)
    (manifests / "alpha-other.module.json").write_text(other)
    keyed = json.dumps(keyed_manifest(standin.address), indent=2)
    (manifests / "gamma.module.json").write_text(keyed)
    gateway = Gateway(manifests, tmp_path, redis_server.url)
    yield gateway
    gateway.stop()


@dataclass
class Receiver:
    service: Service

    @property
    def url(self) -> str:
        return f"{self.service.url}/hook"

    def received(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.service.url}/_received", timeout=5.0)
        answer.raise_for_status()
        deliveries: list[dict[str, Any]] = answer.json()
        for delivery in deliveries:
            delivery["body"] = base64.b64decode(delivery["body"])
        return deliveries


def start_receiver(log_dir: Path, *args: str) -> Receiver:
    port = free_port()
    argv = [sys.executable, str(RECEIVER_SCRIPT), "--port", str(port), *args]
    name = f"receiver-{port}"
    return Receiver(start_service(name, argv, port=port, ready_path="/_received", log_dir=log_dir))


def wait_job(client: httpx.Client, job_id: str, *, timeout: float = 20.0) -> dict[str, Any]:
    """The job once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job.get("status") in ("succeeded", "failed", "cancelled", "expired"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not end in {timeout}s: {job}")
        time.sleep(0.05)
