"""The `fd2` executable: `check` and `routes` on manifest directories and through the Control
Tower stand-in (a real process), and the settings errors of `serve`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fd2.control.manifests.portable import portable

from .conftest import EXAMPLE_MANIFESTS, FD2_ENV, Service, fd2_argv, fd2_env
from .manifest_cache.ct_support import CT_SECRET, start_tower
from .support import REPO

DEMO_ALLOW = {"FD2_MANIFEST_ENV_ALLOW": "FD2_DEMO_UPSTREAM"}


def fd2(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = fd2_env()
    environ.update(env or {})
    result = subprocess.run(
        fd2_argv(*args), capture_output=True, text=True, env=environ, cwd=REPO, timeout=120
    )
    for value in (*FD2_ENV.values(), CT_SECRET):
        assert value not in result.stdout + result.stderr, f"{args} printed a secret value"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def as_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(result.stdout)
    return decoded


def routes_of(report: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (row["project"], row["module"], row["environment"]): row
        for source in report["sources"]
        for row in source["routes"]
    }


def test_the_examples_need_the_demo_placeholder_allowed():
    refused = fd2("check", str(EXAMPLE_MANIFESTS))
    assert refused.returncode == 1, refused.stdout
    assert "placeholder ${FD2_DEMO_UPSTREAM} at config.endpoint_url" in refused.stdout
    assert "listed in --manifest-env-allow" in refused.stdout

    result = fd2("check", str(EXAMPLE_MANIFESTS), env=DEMO_ALLOW)
    assert result.returncode == 0, result.stdout
    text = result.stdout
    examples = len(list(EXAMPLE_MANIFESTS.glob("*.json")))
    assert text.startswith(f"fd2 check {EXAMPLE_MANIFESTS} (directory): {examples} manifest(s)")
    assert "OPEN: would be served without authentication" in text  # the demo opens itself
    assert "dependencies, config.api_key would be dropped by the Control Tower" in text  # acme
    assert "type monitoring is served by no installed package" in text
    assert "0 error(s)" in text

    strict = fd2("check", "--strict", str(EXAMPLE_MANIFESTS), env=DEMO_ALLOW)
    assert strict.returncode == 1
    denied = fd2(
        "check", "--deny-open", "--project", "demo", str(EXAMPLE_MANIFESTS), env=DEMO_ALLOW
    )
    assert denied.returncode == 1 and "2 error(s)" in denied.stdout


def test_json_output_for_pipelines():
    result = fd2("check", "--json", str(EXAMPLE_MANIFESTS), env=DEMO_ALLOW)
    assert result.returncode == 0
    report = as_json(result)
    assert report["ok"] is True and report["errors"] == 0 and report["warnings"] > 0
    routes = routes_of(report)
    assert routes[("demo", "chat", "development")]["auth"] == "none"
    assert routes[("acme", "chat", "production")]["auth"] == "jwt"
    assert routes[("acme", "chat", "production")]["auth_reason"] == "a jwt_config dependency"
    assert routes[("billing", "assistant", "development")]["auth_reason"] == (
        "--default-auth (the manifest says nothing)"
    )
    assert routes[("acme", "observability", "development")]["status"] == "not served"
    severities = {problem["severity"] for problem in report["sources"][0]["problems"]}
    assert severities == {"warning", "note"}


def write_bad_manifests(directory: Path) -> Path:
    directory.mkdir()
    (directory / "truncated.json").write_text('{"project_id": "x", "modules": [')
    (directory / "typed.json").write_text(
        json.dumps({"project_id": "typed", "modules": [{"module_type": "x", "name": 5}]})
    )
    chat = {
        "module_type": "inference_endpoint",
        "name": "chat",
        "config": {
            "model_name": "m",
            "endpoint_url": "${environments.${environment}.urls.llm}/chat/completions",
            "api_key": "vault:secret/no-data#key",
        },
    }
    shop = {
        "project_id": "shop",
        "environments": {"development": {"urls": {"llm": "http://127.0.0.1:9/v1"}}, "prod": {}},
        "modules": [chat],
        "metadata": {"fd2": {"modules": {"chat": {"auth": {"mode": "none"}}}}},
    }
    (directory / "shop.json").write_text(json.dumps(shop))
    return directory


def test_a_bad_directory_fails_naming_each_problem(tmp_path):
    directory = write_bad_manifests(tmp_path / "bad")
    result = fd2("check", "--json", str(directory))
    assert result.returncode == 1
    problems = as_json(result)["sources"][0]["problems"]
    by_origin = {p.get("origin"): p["message"] for p in problems if p["severity"] == "error"}
    assert by_origin["truncated.json"].startswith("not a JSON object")
    assert by_origin["typed.json"] == "Expected `str`, got `int` - at `$.modules[0].name`"
    messages = [p["message"] for p in problems if p["severity"] == "error"]
    assert any("is not of the form vault:<mount>/data/<path>#<key>" in m for m in messages)
    assert any("${environments.prod.urls.llm}" in m for m in messages)
    text = fd2("check", str(directory)).stdout
    assert "chat [development, production]: OPEN: would be served without authentication" in text
    assert "error(s)" in text.splitlines()[-1]


def test_check_reads_the_source_serve_would_and_refuses_none(tmp_path):
    directory = write_bad_manifests(tmp_path / "served")
    result = fd2("check", env={"FD2_MANIFESTS": str(directory)})
    assert result.returncode == 1 and f"fd2 check {directory} (directory)" in result.stdout
    missing = fd2("check")
    assert missing.returncode == 2
    assert "give a manifest directory or a Control Tower URL" in missing.stderr
    unreadable = fd2("check", str(tmp_path / "absent"))
    assert unreadable.returncode == 2 and "no such directory or file" in unreadable.stderr


@pytest.fixture(scope="module")
def tower(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    """The Control Tower stand-in (stores manifests through the real service's models) serving
    acme as written for a local directory: fd2's settings on the module entries."""
    manifests = tmp_path_factory.mktemp("cli-ct-manifests")
    acme = json.loads((EXAMPLE_MANIFESTS / "acme.json").read_text())
    for module in acme["modules"]:
        if module["name"] == "embed":
            module["auth"] = {"mode": "none"}  # dropped by the Control Tower
    (manifests / "acme.json").write_text(json.dumps(acme))
    (manifests / "shop.json").write_text(json.dumps(portable({**acme, "project_id": "shop"})))
    service = start_tower(manifests, tmp_path_factory.mktemp("cli-ct-logs"))
    yield service, manifests
    service.stop()


def test_check_through_the_control_tower(tower):
    service, manifests = tower
    secret = {"CT_SECRET": CT_SECRET}
    args = ("--control-tower-secret-ref", "env:CT_SECRET", "--json")
    result = fd2("check", service.url, *args, env=secret)
    assert result.returncode == 0, result.stdout
    report = as_json(result)
    assert report["sources"][0]["kind"] == "control-tower"
    routes = routes_of(report)
    # Through the Control Tower, acme's embed lost its explicit auth and its dependency: the
    # project's jwt_config module still protects it. Written portably (shop), nothing is lost.
    assert routes[("acme", "embed", "development")]["auth_reason"] == (
        "the project has jwt_config module(s): auth"
    )
    assert routes[("shop", "embed", "development")]["auth"] == "none"
    assert routes[("shop", "chat", "development")]["auth_reason"] == "a jwt_config dependency"
    problems = report["sources"][0]["problems"]
    assert not [p for p in problems if "would be dropped" in p["message"]]

    local = fd2("check", str(manifests), "--project", "acme")
    (embed,) = [line for line in local.stdout.splitlines() if line.startswith("  warning  embed:")]
    assert embed == (
        "  warning  embed: dependencies, auth, config.api_key would be dropped by the Control "
        "Tower: write them under metadata.fd2.modules.embed (docs/manifests.md, 'Where fd2's "
        "settings live')"
    )

    one = as_json(fd2("check", service.url, *args, "--project", "shop", env=secret))
    assert {key[0] for key in routes_of(one)} == {"shop"}


def test_a_control_tower_that_refuses_the_check_exits_2(tower):
    service, _ = tower
    result = fd2(
        "check",
        service.url,
        "--control-tower-secret-ref",
        "env:CT_SECRET",
        env={"CT_SECRET": "wrong-secret"},
    )
    assert result.returncode == 2
    assert "HTTP 401" in result.stderr
    unknown = fd2(
        "check",
        service.url,
        "--project",
        "nope",
        "--control-tower-secret-ref",
        "env:CT_SECRET",
        env={"CT_SECRET": CT_SECRET},
    )
    assert unknown.returncode == 1
    assert "the Control Tower has no such project (404)" in unknown.stdout


def test_routes_prints_the_route_table():
    result = fd2("routes", str(EXAMPLE_MANIFESTS), "--environment", "dev", env=DEMO_ALLOW)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "built offline: secret references were checked for their form, never read" in text
    block = text[text.index("acme/chat [development]") :].split("\n\n")[0].splitlines()
    assert block == [
        "acme/chat [development]  inference_endpoint  serving  (acme.json)",
        "  auth       jwt: a jwt_config dependency",
        "  endpoints  POST /acme/chat/v1/chat/completions",
        "             POST /acme/chat/v1/completions",
        "             POST /acme/chat/v1/embeddings",
        "             POST /acme/chat/v1/messages",
        "             GET /acme/chat/v1/models",
        "             POST /acme/chat/v1/responses",
        "             DELETE /acme/chat/v1/responses/*",
        "             GET /acme/chat/v1/responses/*",
        "  limits     requests_per_second 20 (this route)",
    ]
    assert "[production]" not in text
    assert "acme/legacy [development]  inference_endpoint  disabled" in text

    table = as_json(fd2("routes", "--json", str(EXAMPLE_MANIFESTS), env=DEMO_ALLOW))
    routes = routes_of(table)
    assert routes[("acme", "auth", "staging")]["endpoints"] == ["POST /acme/auth/token"]
    assert routes[("acme", "auth", "staging")]["auth"] == "none"
    assert routes[("billing", "assistant", "production")]["module_type"] == "inference_openai"
    # The examples of the first three projects (the other module types' examples add their own).
    assert len([key for key in routes if key[0] in ("acme", "billing", "demo")]) == 23


def test_serve_names_the_flag_or_variable_of_a_bad_value():
    flag = fd2("serve", "--port", "abc")
    assert flag.returncode == 2
    assert "fd2 serve: error: --port: expected an integer, got 'abc'" in flag.stderr
    variable = fd2("serve", env={"FD2_WORKERS": "0"})
    assert "fd2 serve: error: FD2_WORKERS: expected an integer of at least 1, got '0'" in (
        variable.stderr
    )
    switch = fd2("serve", "--access-log", "yes")
    assert "--access-log is a switch" in switch.stderr


def test_serve_help_is_grouped():
    text = fd2("serve", "--help", env={"COLUMNS": "120"}).stdout
    titles = [
        "serving:",
        "connections and hardening:",
        "manifests and Control Tower:",
        "secrets and Vault:",
        "auth and limits:",
        "Redis:",
        "upstream:",
        "logging:",
    ]
    positions = [text.index(f"\n{title}\n") for title in titles]
    assert positions == sorted(positions)
    assert "--access-log, --no-access-log" in text
    assert "default None" not in text
