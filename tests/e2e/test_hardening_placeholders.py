"""`${NAME}` placeholders read only allowed environment variables (issue 19 J): a manifest cannot
copy another secret of the fd2 process into an answer, and values that are read are masked in
the logs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .conftest import Service
from .hardening import start_fd2_with
from .leaks import LEAKS
from .support import assert_openai_error

FOREIGN_SECRET = "sk-other-project-secret-0123456789"
ALLOWED_MODEL = "gpt-4o-mini-from-the-environment"
OPTED_IN_MODEL = "gpt-4o-from-an-opted-in-variable"
LEAKS.add_secret(FOREIGN_SECRET)


def project(name: str, upstream: str, model_name: str) -> dict[str, object]:
    return {
        "project_id": name,
        "environment": "development",
        "environments": {"development": {}},
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": "chat",
                "auth": {"mode": "none"},
                "config": {
                    "endpoint_url": f"http://{upstream}/v1/chat/completions",
                    "model_name": model_name,
                },
            }
        ],
    }


def test_placeholders_read_only_allowed_variables(tmp_path: Path, standin: Service) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name, model in (
        ("stealer", "${OTHER_PROJECT_SECRET}"),
        ("prefixed", "${FD2_MANIFEST_MODEL}"),
        ("optedin", "${ACME_MODEL}"),
    ):
        (manifests / f"{name}.json").write_text(json.dumps(project(name, standin.address, model)))
    server = start_fd2_with(
        manifests,
        tmp_path,
        "--manifest-env-allow",
        "ACME_*",
        name="fd2-placeholders",
        env={
            "OTHER_PROJECT_SECRET": FOREIGN_SECRET,
            "FD2_MANIFEST_MODEL": ALLOWED_MODEL,
            "ACME_MODEL": OPTED_IN_MODEL,
        },
    )
    try:
        body = {"messages": [{"role": "user", "content": "which model?"}]}
        with httpx.Client(base_url=server.url, timeout=10) as client:
            stolen = client.post("/stealer/chat/v1/chat/completions", json=body)
            prefixed = client.post("/prefixed/chat/v1/chat/completions", json=body)
            opted_in = client.post("/optedin/chat/v1/chat/completions", json=body)
    finally:
        server.stop()
    assert stolen.status_code == 503
    message = assert_openai_error(stolen.content)["message"]
    assert "OTHER_PROJECT_SECRET" in message
    assert FOREIGN_SECRET not in stolen.text
    assert prefixed.status_code == 200, prefixed.text
    assert ALLOWED_MODEL in prefixed.text  # forwarded upstream, echoed by the stand-in
    assert opted_in.status_code == 200, opted_in.text
    assert OPTED_IN_MODEL in opted_in.text
    log = server.output()
    for value in (FOREIGN_SECRET, ALLOWED_MODEL, OPTED_IN_MODEL):
        assert value not in log, f"{value} reached the log"
    assert "***" in log
