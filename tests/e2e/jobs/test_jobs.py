"""Jobs over real processes: submit, read, list, cancel, project isolation, expiry."""

from __future__ import annotations

import json

from .conftest import CHAT, Gateway, wait_job


def test_a_job_runs_the_endpoint_and_keeps_its_result(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        submitted = client.post("/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": CHAT})
        assert submitted.status_code == 202, submitted.text
        answer = submitted.json()
        assert set(answer) >= {"job_id", "status", "created_at", "expires_at"}
        assert answer["status"] == "queued"
        assert answer["expires_at"] > answer["created_at"]
        job = wait_job(client, answer["job_id"])
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["started_at"] >= job["created_at"]
    assert job["completed_at"] >= job["started_at"]
    assert job["result"]["status_code"] == 200
    body = job["result"]["body"]
    assert body["object"] == "chat.completion"
    described = json.loads(body["choices"][0]["message"]["content"])
    assert described["messages"] == CHAT["messages"]
    assert job["error"] is None
