"""`{project}-{module}.<base domain>` routing, with names that contain dashes themselves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .conftest import Service, build_manifest_dir, fd2_argv, fd2_env, free_port, start_service
from .support import assert_openai_error


def test_subdomains_route_to_project_and_module(tmp_path: Path, standin: Service) -> None:
    manifests = build_manifest_dir(tmp_path / "manifests", standin.address)
    # A project whose name has a dash: "my-team" + "chat" must not be read as "my" + "team-chat".
    acme = json.loads((manifests / "acme.json").read_text())
    acme["project_id"] = "my-team"
    (manifests / "my-team.json").write_text(json.dumps(acme))
    port = free_port()
    service = start_service(
        "fd2-subdomain",
        fd2_argv(
            "serve",
            "--port",
            str(port),
            "--manifests",
            str(manifests),
            "--base-domain",
            "ai.example.test",
        ),
        port=port,
        ready_path="/healthz",
        log_dir=tmp_path,
        env=fd2_env(),
    )
    try:
        with httpx.Client(base_url=service.url, timeout=10) as http:
            body = {"messages": [{"role": "user", "content": "hi"}]}
            answer = http.post(
                "/v1/chat/completions", json=body, headers={"host": "acme-chat.ai.example.test"}
            )
            assert answer.status_code == 200, answer.text
            seen = json.loads(answer.json()["choices"][0]["message"]["content"])
            assert seen["authorization"] == "Bearer test-acme-key"
            answer = http.post(
                "/v1/chat/completions",
                json=body,
                headers={"host": "My-Team-Chat.AI.example.test:443"},
            )
            assert answer.status_code == 200, answer.text
            # A host outside the base domain falls back to path routing.
            assert http.get("/acme/embed/v1/models").status_code == 200
            missing = http.get("/v1/models", headers={"host": "acme-nothing.ai.example.test"})
            assert missing.status_code == 404
            assert "nothing" in assert_openai_error(missing.content)["message"]
    finally:
        service.stop()
