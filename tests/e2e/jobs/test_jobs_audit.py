"""A module with an audit trail audits its job submissions and reads, and each job's run (the
run's record carries the job id as its request id)."""

from __future__ import annotations

import json
from pathlib import Path

from ..conftest import Service
from ..support import wait_until
from .conftest import CHAT, Gateway, module_manifest, wait_job


def test_job_submissions_and_runs_are_audited(
    gateway: Gateway, standin: Service, tmp_path: Path
) -> None:
    manifest = module_manifest("delta", standin.address)
    manifest["audit"] = {"content": False}
    (gateway.manifests / "delta.module.json").write_text(json.dumps(manifest))
    audit = tmp_path / "audit.jsonl"
    gateway.start(FD2_AUDIT_FILE=str(audit))
    with gateway.client("delta") as client:
        submitted = client.post("/v1/jobs", json={"endpoint": "/v1/chat/completions", "body": CHAT})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        assert wait_job(client, job_id)["status"] == "succeeded"

    def records() -> list[dict[str, object]] | None:
        if not audit.exists():
            return None
        lines = [json.loads(line) for line in audit.read_text().splitlines() if line]
        endpoints = {line["endpoint"] for line in lines}
        return lines if {"/v1/jobs", "/v1/chat/completions"} <= endpoints else None

    lines = wait_until(records, timeout=10, what="the audit records")
    run = next(line for line in lines if line["endpoint"] == "/v1/chat/completions")
    assert run["request_id"] == job_id
    assert run["status"] == 200
    submit = next(line for line in lines if line["endpoint"] == "/v1/jobs")
    assert (submit["method"], submit["status"]) == ("POST", 202)
