"""`fd2 check` (python/fd2/cli/check.py): what a manifest directory would do in a gateway, offline.

Manifests are written to a directory and read as the command reads them; the routes are built by
the gateway's own route builder with the installed modules."""

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fd2.cli.check import CheckOptions, Report, check
from fd2.cli.check_problems import Problem
from fd2.config import Settings
from fd2.control.manifest_set import read_directory
from fd2.control.manifests.portable import portable

LLM = "http://127.0.0.1:9/v1"


def inference(name: str, **extra: Any) -> dict[str, Any]:
    config = {"model_name": "gpt-4o-mini", "endpoint_url": f"{LLM}/chat/completions"}
    config.update(extra.pop("config", {}))
    return {"module_type": "inference_endpoint", "name": name, "config": config, **extra}


def jwt_module(config: dict[str, Any]) -> dict[str, Any]:
    config = {"service_url": "http://127.0.0.1:9/jwt", **config}
    return {"module_type": "jwt_config", "name": "auth", "config": config}


def project(modules: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "project_id": extra.pop("project_id", "shop"),
        "environment": "development",
        "environments": extra.pop(
            "environments", {"development": {"urls": {"llm": LLM}}, "production": {}}
        ),
        "modules": modules,
        **extra,
    }


def run(
    tmp_path: Path,
    *manifests: dict[str, Any] | str,
    settings: Settings | None = None,
    **options: bool,
) -> Report:
    for number, manifest in enumerate(manifests):
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        (tmp_path / f"m{number}.json").write_text(text)
    return check(read_directory(tmp_path), settings or Settings(), CheckOptions(**options))


def found(report: Report, severity: str, fragment: str) -> list[Problem]:
    return [p for p in report.problems if p.severity == severity and fragment in p.message]


def route(report: Report, module: str, environment: str = "development"):
    return next(r for r in report.routes if (r.module, r.environment) == (module, environment))


def test_decoding_errors_name_the_file_and_the_field_path(tmp_path):
    report = run(
        tmp_path,
        '{"project_id": "x", "modules": [',
        {"project_id": "typed", "modules": [{"module_type": "inference_endpoint", "name": 5}]},
    )
    assert report.errors == 2
    truncated, typed = found(report, "error", "JSON"), found(report, "error", "$.modules[0].name")
    assert truncated[0].origin == "m0.json"
    assert typed[0].origin == "m1.json"
    assert typed[0].message == "Expected `str`, got `int` - at `$.modules[0].name`"


def test_a_clean_project_passes(tmp_path):
    jwt = jwt_module({"secret_key": "env:SHOP_JWT"})
    manifest = project([jwt, inference("chat", config={"api_key": "env:SHOP_KEY"})])
    report = run(tmp_path, portable(manifest))
    assert report.errors == 0 and report.warnings == 0, report.problems
    chat = route(report, "chat")
    assert (chat.status, chat.auth) == ("serving", "jwt")
    assert chat.auth_reason == "the project has jwt_config module(s): auth"


def test_placeholders_are_resolved_per_environment(tmp_path):
    url = "${environments.${environment}.urls.llm}/chat/completions"
    report = run(tmp_path, project([inference("chat", config={"endpoint_url": url})]))
    (problem,) = found(report, "error", "does not exist")
    assert problem.environments == ["production"]
    assert "${environments.production.urls.llm}" in problem.message
    assert route(report, "chat").status == "serving"
    assert route(report, "chat", "production").status == "unavailable"


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("env:1BAD", "names no valid variable"),
        ("vault:secret/acme#key", "is not of the form vault:<mount>/data/<path>#<key>"),
        ("encrypted:abc", "encrypted: values are not supported"),
        ("config:a..b", "is not a dotted path"),
    ],
)
def test_secret_references_are_checked_for_form(tmp_path, reference, fragment):
    report = run(tmp_path, project([inference("chat", config={"api_key": reference})]))
    assert found(report, "error", fragment), report.problems


def test_secret_values_are_never_read(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOP_KEY", "env-secret-value-1234")
    (tmp_path / "key.txt").write_text("file-secret-value-5678")
    config = {"api_key": "env:SHOP_KEY"}
    other = {"api_key": f"file:{tmp_path / 'key.txt'}"}
    report = run(
        tmp_path, project([inference("chat", config=config), inference("b", config=other)])
    )
    encoded = msgspec.json.encode(report)
    assert b"env-secret-value-1234" not in encoded and b"file-secret-value-5678" not in encoded
    assert found(report, "note", "2 secret reference(s) checked for their form, none read")


def test_env_references_are_checked_for_presence_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOP_NO_SUCH_KEY", raising=False)
    manifest = project([inference("chat", config={"api_key": "env:SHOP_NO_SUCH_KEY"})])
    assert run(tmp_path, manifest).errors == 0
    report = run(tmp_path, manifest, check_env=True)
    assert found(report, "error", "variable SHOP_NO_SUCH_KEY is not set")


def test_environment_placeholders_follow_the_allow_list(tmp_path, monkeypatch):
    monkeypatch.delenv("SHOP_LLM", raising=False)
    manifest = project([inference("chat", config={"endpoint_url": "${SHOP_LLM}/chat/completions"})])
    refused = run(tmp_path, manifest)
    assert found(refused, "error", "listed in --manifest-env-allow")
    allowed = run(tmp_path, manifest, settings=Settings(manifest_env_allow=("SHOP_*",)))
    assert allowed.errors == 0
    assert found(allowed, "note", "variables not set here, checked with a stand-in value: SHOP_LLM")
    strict = run(
        tmp_path, manifest, settings=Settings(manifest_env_allow=("SHOP_*",)), check_env=True
    )
    assert found(strict, "error", "environment variable is not set")


def test_module_types_nothing_serves(tmp_path):
    modules = [
        inference("chat", auth={"mode": "api_key"}),
        {"module_type": "monitoring", "name": "metrics", "config": {}},
        {
            "module_type": "vault",
            "name": "v",
            "config": {"vault_url": "https://vault:8200", "token": "env:VAULT_TOKEN"},
        },
        inference("old", status="disabled"),
    ]
    report = run(tmp_path, project(modules))
    (monitoring,) = found(report, "warning", "type monitoring is served by no installed package")
    assert monitoring.module == "metrics" and monitoring.environments == []
    assert "install the package that provides it" in monitoring.message
    assert found(report, "note", "type vault: no route")
    assert found(report, "note", "answers 404: Module shop/old is disabled")
    assert route(report, "metrics").status == "not served"


def test_open_routes_are_reported_loudly(tmp_path):
    report = run(tmp_path, project([inference("chat", auth={"mode": "none"})]))
    (open_route,) = found(report, "warning", "OPEN: would be served without authentication")
    assert "why: auth.mode" in open_route.message
    assert open_route.environments == ["development", "production"]
    denied = run(tmp_path, project([inference("chat", auth={"mode": "none"})]), deny_open=True)
    assert found(denied, "error", "OPEN:")


def test_the_operators_default_auth_decides_what_a_manifest_leaves_unsaid(tmp_path):
    manifest = project([inference("chat")])
    closed = route(run(tmp_path, manifest), "chat")
    assert (closed.auth, closed.auth_reason) == (
        "api_key",
        "--default-auth (the manifest says nothing)",
    )
    report = run(tmp_path, manifest, settings=Settings(default_auth="none"))
    assert route(report, "chat").auth == "none"
    assert found(report, "warning", "why: --default-auth (the manifest says nothing)")
    assert found(closed_report := run(tmp_path, manifest), "note", "the manifest holds none")
    assert closed_report.errors == 0


def test_a_jwt_module_that_cannot_verify_makes_its_dependants_unavailable(tmp_path):
    jwt = jwt_module({"algorithm": "RS256"})
    report = run(tmp_path, project([jwt, inference("chat", dependencies=["auth"])]))
    assert found(report, "error", "needs public_key or jwks_url for RS256")
    assert route(report, "chat").auth == "jwt"  # what it asks for, once fixed


def test_a_public_key_reference_is_not_taken_for_an_error(tmp_path):
    jwt = jwt_module({"algorithm": "RS256", "public_key": "file:/etc/fd2/jwt.pub.pem"})
    report = run(tmp_path, portable(project([jwt, inference("chat", dependencies=["auth"])])))
    chat = route(report, "chat")
    assert chat.status == "serving" and chat.auth == "jwt"
    assert found(report, "note", "compiles when its secret references hold a public key (PEM)")
    assert report.errors == 0


def test_claims_that_cannot_be_resolved_fail_token_requests_only(tmp_path):
    claims = {"static": {"team": "${environments.${environment}.team}"}}
    jwt = jwt_module({"secret_key": "env:K", "claims": claims})
    environments = {"development": {"team": "a"}, "production": {}}
    report = run(tmp_path, project([jwt], environments=environments))
    (problem,) = found(report, "warning", "token requests will fail (503)")
    assert problem.environments == ["production"]
    assert "config.claims.static.team" in problem.message
    assert route(report, "auth", "production").status == "serving"


def test_an_unusable_vault_module_is_an_error(tmp_path):
    vault = {
        "module_type": "vault",
        "name": "v",
        "config": {"vault_url": "ftp://vault", "token": "env:T"},
    }
    report = run(tmp_path, project([vault]))
    assert found(report, "error", "vault address must be an http:// or https:// URL")


def test_apisix_routes(tmp_path):
    upstream = {"type": "roundrobin", "nodes": {"127.0.0.1:9": 1}}
    gateway = {
        "module_type": "api_gateway",
        "name": "gw",
        "config": {
            "gateway_type": "apisix",
            "routes": [
                {"name": "ok", "uri": "/ok", "methods": ["POST"], "upstream": upstream},
                {"name": "get-only", "uri": "/g", "methods": ["GET"], "upstream": upstream},
            ],
        },
    }
    served = inference("served", config={"apisix_route": "ok", "apisix_gateway_module": "gw"})
    missing = inference("missing", config={"apisix_route": "nope", "apisix_gateway_module": "gw"})
    report = run(tmp_path, project([gateway, served, missing]))
    assert found(report, "error", "the gateway module has no route 'nope'")
    (unserved,) = found(report, "warning", "APISIX route 'get-only' cannot be compiled")
    assert "does not allow POST" in unserved.message and unserved.module == "gw"
    assert route(report, "served").endpoints == ["POST /shop/served/v1/chat/completions"]
    assert found(report, "note", "type api_gateway: no route")


def test_settings_the_control_tower_would_drop(tmp_path):
    modules = [
        inference(
            "chat",
            auth={"mode": "api_key"},
            limits={"requests_per_minute": 60},
            dependencies=["other"],
            config={"api_key": "env:K", "timeouts": {"connect_s": 1}},
        ),
        inference("other", auth={"mode": "api_key"}),
    ]
    manifest = project(modules, api_keys=[{"id": "ci", "hash": "00" * 32}])
    report = run(tmp_path, manifest)
    (chat,) = [p for p in found(report, "warning", "would be dropped") if p.module == "chat"]
    assert chat.message.startswith(
        "auth, limits, dependencies, config.api_key, config.timeouts would be dropped by the "
        "Control Tower: write them under metadata.fd2.modules.chat"
    )
    assert found(report, "warning", "api_keys would be dropped by the Control Tower")
    (tmp_path / "m0.json").unlink()
    assert not found(run(tmp_path, portable(manifest)), "warning", "would be dropped")


def test_environments_of_one_problem_are_merged_and_counts_add_up(tmp_path):
    report = run(tmp_path, project([inference("chat", config={"api_key": "env:1BAD"})]))
    assert report.errors == len(found(report, "error", "")) == 2  # one per environment
    assert report.warnings == len(found(report, "warning", ""))
    assert report.manifests == 1 and len(report.routes) == 2


def test_limits_and_endpoints_of_a_route(tmp_path):
    environments = {
        "development": {"limits": {"requests_per_second": 5, "project": {"tokens_per_minute": 900}}}
    }
    report = run(
        tmp_path,
        project(
            [inference("chat", auth={"mode": "none"}, limits={"requests_per_minute": 60})],
            environments=environments,
        ),
    )
    chat = route(report, "chat")
    assert chat.limits == [
        "requests_per_minute 60 (this route)",
        "requests_per_second 5 (this route)",
        "tokens_per_minute 900 (the project's modules together)",
    ]
    assert chat.endpoints == [
        "POST /shop/chat/v1/chat/completions",
        "POST /shop/chat/v1/completions",
        "POST /shop/chat/v1/embeddings",
        "POST /shop/chat/v1/messages",
        "GET /shop/chat/v1/models",
        "POST /shop/chat/v1/responses",
        "DELETE /shop/chat/v1/responses/*",
        "GET /shop/chat/v1/responses/*",
    ]
