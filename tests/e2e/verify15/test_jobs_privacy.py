"""Independent review: a job on a module that redacts (issue 15, points 1 and 5). A job's run
goes through the route's redaction step, so a request the route blocks fails as a job with the
kind named, never the value; the value is not in the job's view. (Submission is accepted today:
the body waits in Redis until the run refuses it; a check at submission would be better.)"""

from __future__ import annotations

import time

import httpx

from ..privacy.test_privacy import API_KEY, CARD, Stack


def test_a_job_whose_request_the_route_blocks_fails_without_the_value(stack: Stack) -> None:
    headers = {"authorization": f"Bearer {API_KEY}"}
    with httpx.Client(
        base_url=f"{stack.fd2.url}/privacy/guard", headers=headers, timeout=10
    ) as client:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"pay {CARD}"}]}
        answer = client.post("/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": body})
        assert answer.status_code in (202, 400), answer.text
        if answer.status_code == 400:
            assert CARD not in answer.text
            return
        job_id = answer.json()["job_id"]
        deadline = time.monotonic() + 20
        while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "pii_blocked" or job["result"]["status_code"] == 400, job
    text = str(job)
    assert CARD not in text and CARD.replace(" ", "") not in text
