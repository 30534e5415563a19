"""Per-environment resolution of a Control Tower manifest, seen through requests and /admin."""

from __future__ import annotations

import httpx

from ..support import assert_openai_error, chat_body
from .conftest import MakeGateway
from .ct_support import Tower


def test_placeholders_resolve_per_environment_and_failures_stay_local(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    manifest = tower.read("acme")
    for module in manifest["modules"]:
        if module["name"] == "chat":
            # `${environment}` and a named environment's entry, inside a longer string.
            module["config"]["system_prompt"] = (
                "dev tokens from ${environments.development.urls.jwt_service_url}, "
                "served in ${environment}"
            )
        if module["name"] == "embed":
            module["config"]["endpoint_url"] = "${environments.${environment}.urls.nowhere}"
    tower.write("acme", manifest)
    gateway = make_gateway(tower.url)

    assert gateway.prompt() == "dev tokens from http://127.0.0.1:5000, served in development"
    # The unresolvable placeholder makes `embed` unavailable, naming it and its path...
    response = httpx.post(
        f"{gateway.url}/acme/embed/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "x"},
        timeout=10,
    )
    assert response.status_code == 503
    message = assert_openai_error(response.content)["message"]
    assert "${environments.${environment}.urls.nowhere}" in message or "urls.nowhere" in message
    assert "endpoint_url" in message
    # ...the rest of the project still serves, and /admin/routes shows the same reason.
    assert gateway.prompt() == "dev tokens from http://127.0.0.1:5000, served in development"
    (acme,) = gateway.routes()["projects"]
    embed = next(module for module in acme["modules"] if module["module"] == "embed")
    assert all("urls.nowhere" in env["error"] for env in embed["environments"])
    # An environment the module lacks: 400 listing the valid ones.
    response = httpx.post(
        f"{gateway.url}/acme/chat/v1/chat/completions",
        content=chat_body(),
        headers={"X-Environment": "qa", "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    error = assert_openai_error(response.content)
    assert error["code"] == "unknown_environment"
    assert "development" in error["message"] and "staging" in error["message"]
