"""Webhooks over real processes: signed as Standard Webhooks says (checked with the
`standardwebhooks` package, an implementation that is not ours), retried, dead-lettered, and
refused for addresses a webhook may not reach."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from standardwebhooks.webhooks import Webhook

from ..redis_server import RedisServer
from ..support import assert_openai_error, wait_until
from .conftest import CHAT, WEBHOOK_SECRET, Gateway, start_receiver, wait_job


def _submit(client: httpx.Client, url: str) -> str:
    answer = client.post(
        "/v1/jobs",
        json={"endpoint": "/v1/chat/completions", "body": CHAT, "webhook": {"url": url}},
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def _webhook_settled(client: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
    if job["webhook"]["status"] in ("delivered", "dead_lettered"):
        return job
    return None


def _verified(delivery: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(WEBHOOK_SECRET).verify(delivery["body"], delivery["headers"])
    return payload


def test_a_finished_job_calls_its_webhook_signed(gateway: Gateway, tmp_path: Path) -> None:
    receiver = start_receiver(tmp_path)
    try:
        gateway.start()
        with gateway.client() as client:
            job_id = _submit(client, receiver.url)
            job = wait_until(lambda: _webhook_settled(client, job_id), timeout=20)
        assert job["webhook"]["status"] == "delivered"
        assert [d["status_code"] for d in job["webhook"]["deliveries"]] == [204]
        (delivery,) = receiver.received()
        payload = _verified(delivery)
        assert payload["type"] == "job.succeeded"
        assert payload["data"]["job_id"] == job_id
        assert payload["data"]["result"]["status_code"] == 200
        assert delivery["headers"]["webhook-id"] == f"msg_{job_id}"
        assert delivery["headers"]["content-type"] == "application/json"
        tampered = {**delivery, "body": delivery["body"].replace(b"succeeded", b"failed")}
        with pytest.raises(Exception, match="signature"):
            _verified(tampered)
    finally:
        receiver.service.stop()


def test_a_failing_webhook_is_retried_with_the_same_id(gateway: Gateway, tmp_path: Path) -> None:
    receiver = start_receiver(tmp_path, "--fail-first", "2", "--status", "500")
    try:
        gateway.start()
        with gateway.client() as client:
            job_id = _submit(client, receiver.url)
            job = wait_until(lambda: _webhook_settled(client, job_id), timeout=20)
        assert job["webhook"]["status"] == "delivered"
        deliveries = job["webhook"]["deliveries"]
        assert [d["status_code"] for d in deliveries] == [500, 500, 204]
        assert [d["attempt"] for d in deliveries] == [1, 2, 3]
        received = receiver.received()
        assert len(received) == 3
        assert {r["headers"]["webhook-id"] for r in received} == {f"msg_{job_id}"}
        for delivery in received:
            assert _verified(delivery)["data"]["job_id"] == job_id
    finally:
        receiver.service.stop()


def test_a_webhook_that_keeps_failing_is_dead_lettered(
    gateway: Gateway, redis_server: RedisServer, tmp_path: Path
) -> None:
    receiver = start_receiver(tmp_path, "--fail-first", "100", "--status", "503")
    try:
        gateway.start()  # at most 3 attempts (conftest)
        with gateway.client() as client:
            job_id = _submit(client, receiver.url)
            job = wait_until(lambda: _webhook_settled(client, job_id), timeout=20)
        assert job["status"] == "succeeded"  # the job itself is done; only its webhook failed
        assert job["webhook"]["status"] == "dead_lettered"
        assert [d["status_code"] for d in job["webhook"]["deliveries"]] == [503, 503, 503]
        assert len(receiver.received()) == 3
        with redis.Redis.from_url(redis_server.url) as client:
            dead = client.xrange("fd2:jobs:dead")
        assert [entry[1][b"id"].decode() for entry in dead] == [job_id]
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
        assert 'fd2_webhook_deliveries_total{outcome="dead_lettered"} 1.0' in metrics
        assert 'fd2_webhook_deliveries_total{outcome="retrying"} 2.0' in metrics
        assert 'fd2_jobs_finished_total{status="succeeded"} 1.0' in metrics
        wait_until(
            lambda: (
                'fd2_jobs_queue_depth{queue="dead"} 1.0'
                in httpx.get(f"{gateway.url}/metrics", timeout=5).text
            ),
            timeout=10,
            what="the sampled dead-letter depth",
        )
    finally:
        receiver.service.stop()


def test_webhook_urls_fd2_may_not_reach_are_refused(gateway: Gateway) -> None:
    gateway.start(FD2_WEBHOOK_ALLOW_PRIVATE="", FD2_WEBHOOK_ALLOW_HTTP="false")
    refused = [
        "http://example.com/hook",  # https only
        "https://127.0.0.1/hook",
        "https://localhost/hook",  # a name that resolves to loopback
        "https://[::1]/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.1/hook",
        "https://100.64.0.1/hook",  # shared address space (CGNAT)
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://user:pass@example.com/hook",
        "not a url",
    ]
    with gateway.client() as client:
        for url in refused:
            answer = client.post(
                "/v1/jobs",
                json={"endpoint": "/v1/chat/completions", "body": CHAT, "webhook": {"url": url}},
            )
            assert answer.status_code == 400, (url, answer.text)
            error = assert_openai_error(answer.content, status=400)
            assert error["param"] in ("webhook.url", "webhook"), error
        assert client.get("/v1/jobs").json()["data"] == []


def test_allowing_private_addresses_still_refuses_cloud_metadata(gateway: Gateway) -> None:
    gateway.start(FD2_WEBHOOK_ALLOW_PRIVATE="all")
    with gateway.client() as client:
        for url in ("https://169.254.169.254/latest/", "https://[fd00:ec2::254]/"):
            answer = client.post(
                "/v1/jobs",
                json={"endpoint": "/v1/chat/completions", "body": CHAT, "webhook": {"url": url}},
            )
            assert answer.status_code == 400, (url, answer.text)
        allowed = client.post(
            "/v1/jobs",
            json={
                "endpoint": "/v1/chat/completions",
                "body": CHAT,
                "webhook": {"url": "http://10.1.2.3/hook"},
            },
        )
        assert allowed.status_code == 202, allowed.text
        job = wait_job(client, allowed.json()["job_id"])
    assert job["status"] == "succeeded"
    assert json.dumps(job).count("10.1.2.3") == 1  # the URL is shown; nothing else leaks
