"""Jobs over real processes: submit, read, list, cancel, project isolation, expiry."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from ..redis_server import RedisServer
from ..support import assert_openai_error, wait_until
from .conftest import CHAT, Gateway, wait_job


def test_a_job_runs_the_endpoint_and_keeps_its_result(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        submitted = client.post(
            "/v1/jobs",
            json={"endpoint": "/v1/chat/completions", "body": CHAT, "metadata": {"ticket": "t-1"}},
        )
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
    assert job["metadata"] == answer["metadata"] == {"ticket": "t-1"}


def _submit(client: httpx.Client, body: dict[str, Any] | None = None, **extra: Any) -> str:
    answer = client.post(
        "/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": body or CHAT, **extra}
    )
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def test_an_error_answer_fails_the_job_with_the_error(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        job = wait_job(client, _submit(client, {**CHAT, "model": "error-400"}))
    assert job["status"] == "failed"
    assert job["result"] is None
    assert job["error"]["status_code"] == 400
    assert job["error"]["type"] == "invalid_request_error"


def test_a_job_of_one_project_is_not_found_by_another(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client("alpha") as alpha, gateway.client("beta") as beta:
        job_id = _submit(alpha)
        wait_job(alpha, job_id)
        for method in ("GET", "DELETE"):
            answer = beta.request(method, f"/v1/jobs/{job_id}")
            assert answer.status_code == 404
            assert_openai_error(answer.content, status=404)
        assert beta.get("/v1/jobs").json()["data"] == []
        assert [job["job_id"] for job in alpha.get("/v1/jobs").json()["data"]] == [job_id]


def test_a_job_is_read_through_the_module_it_was_submitted_to(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client("alpha") as chat, gateway.client("alpha", module="other") as other:
        job_id = _submit(chat)
        wait_job(chat, job_id)
        # Another module of the same project: a caller admitted to it alone reads nothing here.
        assert other.get(f"/v1/jobs/{job_id}").status_code == 404
        assert other.delete(f"/v1/jobs/{job_id}").status_code == 404
        assert other.get("/v1/jobs").json()["data"] == []
        assert chat.get(f"/v1/jobs/{job_id}").status_code == 200


def test_the_list_filters_by_status_and_pages(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        good = [_submit(client) for _ in range(3)]
        bad = _submit(client, {**CHAT, "model": "error-400"})
        for job_id in [*good, bad]:
            wait_job(client, job_id)
        failed = client.get("/v1/jobs", params={"status": "failed"}).json()
        assert [job["job_id"] for job in failed["data"]] == [bad]
        succeeded = client.get("/v1/jobs", params={"status": "succeeded"}).json()
        assert {job["job_id"] for job in succeeded["data"]} == set(good)
        first = client.get("/v1/jobs", params={"limit": 2}).json()
        assert first["has_more"] is True
        assert [job["job_id"] for job in first["data"]] == [bad, good[2]]
        rest = client.get("/v1/jobs", params={"limit": 2, "after": first["last_id"]}).json()
        assert [job["job_id"] for job in rest["data"]] == [good[1], good[0]]
        assert rest["has_more"] is False
        wrong = client.get("/v1/jobs", params={"status": "done"})
        assert_openai_error(wrong.content, status=400)
        assert wrong.status_code == 400


def test_a_running_job_is_cancelled_and_keeps_no_result(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        job_id = _submit(client, {**CHAT, "model": "slow-3000"})
        wait_until(
            lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "running",
            timeout=10,
            what="the job to start",
        )
        cancelled = client.delete(f"/v1/jobs/{job_id}")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        again = client.delete(f"/v1/jobs/{job_id}")
        assert again.status_code == 409
        assert_openai_error(again.content, status=409)
        time.sleep(3.5)  # past the upstream's answer: it must not be written
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "cancelled"
    assert job["result"] is None


def test_bad_submissions_are_refused_in_openai_shape(gateway: Gateway) -> None:
    gateway.start()
    with gateway.client() as client:
        cases = [
            {"endpoint": "/v1/nothing", "body": CHAT},
            {"endpoint": "/v1/jobs", "body": CHAT},
            {"endpoint": "/v1/chat/completions", "body": [1]},
            {"endpoint": "/v1/chat/completions", "body": {**CHAT, "stream": True}},
            {"endpoint": "/v1/chat/completions", "body": CHAT, "webhook": {"url": 3}},
            {"endpoint": "/v1/chat/completions", "body": CHAT, "metadata": {"k": 1}},
            {
                "endpoint": "/v1/chat/completions",
                "body": CHAT,
                "metadata": {str(n): "" for n in range(17)},
            },
        ]
        for case in cases:
            answer = client.post("/v1/jobs", json=case)
            assert answer.status_code == 400, (case, answer.text)
            assert_openai_error(answer.content, status=400)
        missing = client.get("/v1/jobs/job_0000nothere")
        assert missing.status_code == 404
        assert_openai_error(missing.content, status=404)


def test_a_job_not_run_before_it_expires_is_expired(gateway: Gateway) -> None:
    gateway.start(FD2_JOBS_WORKERS="0", FD2_JOBS_TTL="1")  # this replica runs no job
    with gateway.client() as client:
        job_id = _submit(client)
        time.sleep(1.5)
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    gateway.stop()
    gateway.start(FD2_JOBS_WORKERS="2")
    with gateway.client() as client:
        job = wait_job(client, job_id)
    assert job["status"] == "expired"
    assert job["error"]["code"] == "job_expired"
    assert job["result"] is None


def test_without_redis_the_job_endpoints_answer_503(
    gateway: Gateway, redis_server: RedisServer
) -> None:
    gateway.redis_url = ""
    gateway.start()
    with gateway.client() as client:
        for method, path in (("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/batches")):
            answer = client.request(method, path, json={"endpoint": "/v1/chat/completions"})
            assert answer.status_code == 503
            error = assert_openai_error(answer.content, status=503)
            assert "--redis-url" in error["message"]


def test_a_redis_that_does_not_answer_is_a_503_then_jobs_resume(
    gateway: Gateway, redis_server: RedisServer
) -> None:
    gateway.start()
    redis_server.stop()
    with gateway.client() as client:
        for method, path in (("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/x")):
            answer = client.request(
                method, path, json={"endpoint": "/v1/chat/completions", "body": CHAT}
            )
            assert answer.status_code == 503, (path, answer.text)
            assert assert_openai_error(answer.content, status=503)["code"] == "jobs_unavailable"
        redis_server.start()  # same port; the worker's loops start again after their back-off
        job_id = wait_until(
            lambda: (
                (
                    a := client.post(
                        "/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": CHAT}
                    )
                ).status_code
                == 202
                and a.json()["job_id"]
            ),
            timeout=15,
            what="submissions to work again",
        )
        job = wait_job(client, job_id, timeout=40)
    assert job["status"] == "succeeded"
