"""Jobs on a route with API keys and limits: the caller is authenticated when it submits, the
job runs as that caller (no credential is stored), and the route's limits apply when it runs."""

from __future__ import annotations

import time

from ..support import assert_openai_error
from .conftest import CHAT, GAMMA_KEY, Gateway, wait_job

SUBMIT = {"endpoint": "/v1/chat/completions", "body": CHAT}


def test_a_job_needs_the_routes_credential(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client("gamma") as anonymous:
        for method, path in (("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("POST", "/v1/files")):
            answer = anonymous.request(method, path, json=SUBMIT)
            assert answer.status_code == 401, (path, answer.text)
            assert_openai_error(answer.content, status=401)
    with gateway.client("gamma", "fd2_wrong-key-000000000000000000000000000") as wrong:
        assert wrong.post("/v1/jobs", json=SUBMIT).status_code == 401


def test_a_job_runs_as_its_caller_and_under_the_routes_limits(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client("gamma", GAMMA_KEY) as client:
        first = client.post("/v1/jobs", json=SUBMIT)
        assert first.status_code == 202, first.text
        job = wait_job(client, first.json()["job_id"])
        assert job["status"] == "succeeded", job  # run with no credential: as its submitter
        second = client.post("/v1/jobs", json=SUBMIT)  # submitting is not the limited work
        assert second.status_code == 202, second.text
        job_id = second.json()["job_id"]
        time.sleep(3)
        waiting = client.get(f"/v1/jobs/{job_id}").json()
        # One request a minute: the second run is refused by the limit and waits its turn,
        # neither failed nor counted as an attempt.
        assert waiting["status"] == "queued", waiting
        assert waiting["attempts"] == 0
        assert client.delete(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
