"""Independent review of the audit trail (issue 15, point 6) over real processes (fd2 under
Granian, a redis-server, the OpenAI stand-in): one record per request, refusals included (401,
429, 400), none holding a credential or a raw PII value when content is off; and a sink that
hangs (a FIFO nobody reads: a stalled network file system looks the same) neither holds up
requests, nor the other sink, nor the worker's exit."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from ..conftest import Service, fd2_argv, fd2_env, free_port, start_service
from ..leaks import LEAKS
from ..redis_server import running_redis
from ..support import wait_until

PEPPER = "verify15-audit-pepper"
KEY = "fd2_verify15-audit-key-00000000000000000000"
WRONG = "fd2_verify15-audit-wrong-000000000000000000"
for secret in (PEPPER, KEY, WRONG):
    LEAKS.add_secret(secret)
EMAIL = "jane.roe@example.org"
CARD = "4111 1111 1111 1111"


def _manifest(upstream: str) -> dict[str, Any]:
    digest = hmac.new(PEPPER.encode(), KEY.encode(), hashlib.sha256).hexdigest()
    return {
        "project": "vaudit",
        "module": "chat",
        "module_type": "inference_openai",
        "auth": {"mode": "api_key"},
        "api_keys": [{"id": "team-v", "hash": digest}],
        "limits": {"requests_per_minute": 4},
        "runtime": {"type": "python:3.11", "implementation": "fd2_inference.InferenceModule"},
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": [
            {"name": "api_key", "source": "env:BILLING_UPSTREAM_API_KEY", "required": True}
        ],
        "default_environment": "dev",
        "audit": {},
        "redaction": {"kinds": {"card": "block"}},
    }


def _start(tmp: Path, standin: Service, redis_url: str, audit_file: Path) -> Service:
    manifests = tmp / "manifests"
    manifests.mkdir(exist_ok=True)
    (manifests / "vaudit.module.json").write_text(json.dumps(_manifest(standin.address)))
    port = free_port()
    env = fd2_env()
    env["V15_PEPPER"] = PEPPER
    argv = fd2_argv(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--manifests", str(manifests),
        "--default-env", "development", "--redis-url", redis_url,
        "--api-key-pepper-ref", "env:V15_PEPPER", "--audit-file", str(audit_file),
        "--audit-stream", "fd2:v15-audit",
    )  # fmt: skip
    return start_service(
        f"fd2-v15-audit-{port}", argv, port=port, ready_path="/healthz", log_dir=tmp, env=env
    )


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with running_redis(tmp_path) as url:
        yield url


def _ask(service: Service, key: str | None, content: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    return httpx.post(
        f"{service.url}/vaudit/chat/v1/chat/completions", json=body, headers=headers, timeout=20
    )


def _stream_records(redis_url: str) -> list[dict[str, Any]]:
    connection = redis.Redis.from_url(redis_url)
    try:
        entries = connection.xrange("fd2:v15-audit")
    finally:
        connection.close()
    return [json.loads(fields[b"record"]) for _, fields in entries]


def test_every_request_and_refusal_has_one_record_without_secrets_or_pii(
    tmp_path: Path, standin: Service, redis_url: str
) -> None:
    audit_file = tmp_path / "audit.jsonl"
    service = _start(tmp_path, standin, redis_url, audit_file)
    try:
        answers = [
            _ask(service, None, "no key"),
            _ask(service, WRONG, "wrong key"),
            _ask(service, KEY, f"mail {EMAIL}"),
            _ask(service, KEY, f"card {CARD}"),
            _ask(service, KEY, "third"),
            _ask(service, KEY, "fourth"),
            _ask(service, KEY, "over the limit"),
        ]
        statuses = [a.status_code for a in answers]
        assert statuses == [401, 401, 200, 400, 200, 200, 429], [a.text for a in answers]
        ids = [a.headers["x-request-id"] for a in answers]
        wait_until(lambda: len(_stream_records(redis_url)) >= len(ids), timeout=10)
        time.sleep(0.3)
        streamed = _stream_records(redis_url)
        filed = [json.loads(line) for line in audit_file.read_text().splitlines()]
    finally:
        service.stop()
    for records in (streamed, filed):
        assert sorted(r["request_id"] for r in records) == sorted(ids)  # one each, no more
        by_id = {r["request_id"]: r for r in records}
        assert [by_id[i]["status"] for i in ids] == statuses
        assert "caller" not in by_id[ids[0]] and "caller" not in by_id[ids[1]]
        assert {by_id[i].get("caller") for i in ids[2:]} == {"key:team-v"}
        # (The stand-in's answer describes the request it got, a credential-like header
        # included: counted under `response.`; the request's own counts are what is checked.)
        assert _request_counts(by_id[ids[2]]) == {"request.email": 1}
        assert _request_counts(by_id[ids[3]]) == {"request.card": 1}
        text = json.dumps(records)
        for never in (KEY, WRONG, EMAIL, CARD, CARD.replace(" ", ""), "jane.roe"):
            assert never not in text
        for record in records:
            assert "request" not in record and "response" not in record
    assert os.stat(audit_file).st_mode & 0o777 == 0o600


def _request_counts(record: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = record.get("redactions", {})
    return {kind: n for kind, n in counts.items() if kind.startswith("request.")}


def test_a_hung_file_sink_holds_up_no_request_nor_the_stream_nor_the_exit(
    tmp_path: Path, standin: Service, redis_url: str
) -> None:
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)  # opening it for writing waits for a reader that never comes
    service = _start(tmp_path, standin, redis_url, fifo)
    try:
        started = time.monotonic()
        answers = [_ask(service, KEY, f"hung sink {n}") for n in range(3)]
        assert [a.status_code for a in answers] == [200] * 3
        assert time.monotonic() - started < 10
        # The stream sink is not held behind the hung file.
        wait_until(lambda: len(_stream_records(redis_url)) >= 3, timeout=15)
    finally:
        service.signal(signal.SIGTERM)
        code = service.wait_exit(20)
        service.stop()
    assert code is not None, "fd2 did not exit within 20 s of SIGTERM with a hung audit sink"
