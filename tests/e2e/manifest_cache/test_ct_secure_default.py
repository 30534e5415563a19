"""Manifests that went through the Control Tower's API (POST, then fd2 GETs them): whatever the
Control Tower dropped, nothing is served open and nothing is forwarded without its key.

The manifests are created through the stand-in's real API with the superuser secret; the stand-in
stores them through the Control Tower's models, as the real one does (tests/standins/ct_models.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt

from fd2.control.manifests.portable import portable

from ..conftest import EXAMPLE_MANIFESTS, EXAMPLE_UPSTREAM, FD2_ENV, Service
from ..leaks import LEAKS
from ..support import assert_openai_error
from .conftest import MakeGateway
from .ct_support import CT_SECRET, Tower

CONSUMER_SECRET = "ct-route-consumer-secret-7d21a-0123456789"
LEAKS.add_secret(CONSUMER_SECRET)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def refused(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return assert_openai_error(answer.content, status=status)


def create(tower: Tower, manifest: dict[str, Any]) -> dict[str, Any]:
    """POST through the Control Tower API; answers what a GET then returns."""
    headers = {"X-DSPAI-Client-Secret": CT_SECRET}
    answer = httpx.post(
        f"{tower.url}/manifests", json={"manifest": manifest}, headers=headers, timeout=10
    )
    assert answer.status_code == 201, answer.text
    stored = httpx.get(
        f"{tower.url}/manifests/{manifest['project_id']}", headers=headers, timeout=10
    )
    return dict(stored.json())


def acme(standin: Service, project_id: str) -> dict[str, Any]:
    text = (EXAMPLE_MANIFESTS / "acme.json").read_text().replace(EXAMPLE_UPSTREAM, standin.address)
    raw = json.loads(text)
    raw["project_id"] = project_id
    for entry in raw["environments"].values():
        entry.pop("limits", None)
    return dict(raw)


def test_a_jwt_project_written_for_local_use_stays_protected(
    tower: Tower, make_gateway: MakeGateway, standin: Service
) -> None:
    # acme.json writes `dependencies: ["auth"]` and `config.api_key` on its modules: the
    # Control Tower drops both. fd2 must neither open the module nor call upstream keyless.
    stored = create(tower, acme(standin, "acme-ct"))
    chat = next(m for m in stored["modules"] if m["name"] == "chat")
    assert "dependencies" not in chat and "api_key" not in chat["config"]
    gateway = make_gateway(tower.url)
    answer = httpx.post(f"{gateway.url}/acme-ct/chat/v1/chat/completions", json=CHAT, timeout=20)
    refused(answer, 401)
    view = next(
        env
        for env in gateway.project("acme-ct")["modules"]  # type: ignore[index]
        if env["module"] == "chat"
    )["environments"][0]
    assert view["auth"]["mode"] == "jwt"
    assert "jwt_config" in view["auth"]["why"]


def test_the_same_project_in_portable_form_keeps_every_setting(
    tower: Tower, make_gateway: MakeGateway, standin: Service
) -> None:
    raw = acme(standin, "acme-portable")
    secret = FD2_ENV["ACME_DEV_JWT_SECRET"]
    create(tower, portable(raw))
    gateway = make_gateway(tower.url)
    url = f"{gateway.url}/acme-portable/chat/v1/chat/completions"
    refused(httpx.post(url, json=CHAT, timeout=20), 401)
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "alice",
            "type": "access",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "project": "acme-portable",
            "environment": "development",
        },
        secret,
        algorithm="HS256",
    )
    answer = httpx.post(url, json=CHAT, headers={"authorization": f"Bearer {token}"}, timeout=20)
    assert answer.status_code == 200, answer.text
    # The stand-in echoes what it received: the upstream key, which survived in metadata.fd2.
    assert (
        '"authorization":"Bearer test-acme-key"'
        in answer.json()["choices"][0]["message"]["content"]
    )


def apisix_project(standin: Service, count: int) -> dict[str, Any]:
    return {
        "project_id": "routed",
        "project_name": "APISIX-described project",
        "environment": "development",
        "environments": {
            "development": {
                "urls": {"node": f"http://{standin.address}", "api": "http://127.0.0.1:9"},
                "secrets": {"jwt_secret_key": CONSUMER_SECRET},
            }
        },
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": "convert",
                "config": {
                    "model_name": "gpt-4o-mini",
                    "endpoint_url": "${environments.${environment}.urls.api}/routed/convert",
                    "apisix_route": "convert",
                    "apisix_gateway_module": "gw",
                },
            },
            {
                "module_type": "api_gateway",
                "name": "gw",
                "config": {
                    "gateway_type": "apisix",
                    "consumer": {
                        "username": "consumer",
                        "plugins": {
                            "jwt-auth": {
                                "key": "routed-key",
                                "secret": "${environments.${environment}.secrets.jwt_secret_key}",
                            }
                        },
                    },
                    "routes": [
                        {
                            "name": "convert",
                            "uri": "/routed/convert",
                            "methods": ["POST"],
                            "upstream": {
                                "type": "roundrobin",
                                "nodes": {"${environments.${environment}.urls.node}": 1},
                            },
                            "plugins": {
                                "jwt-auth": {},
                                "limit-count": {"count": count, "time_window": 60},
                                "proxy-rewrite": {"uri": "/v1/chat/completions"},
                                "response-rewrite": {"headers": {"remove": ["Content-Encoding"]}},
                            },
                        }
                    ],
                },
            },
        ],
    }


def consumer_token(key: str, secret: str = CONSUMER_SECRET) -> str:
    now = int(time.time())
    claims = {
        "sub": "bob",
        "type": "access",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "key": key,
        "project": "routed",
        "environment": "development",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def test_an_apisix_route_with_jwt_auth_and_limit_count_is_enforced_by_fd2(
    tower: Tower, make_gateway: MakeGateway, standin: Service
) -> None:
    create(tower, apisix_project(standin, count=3))
    gateway = make_gateway(tower.url)
    url = f"{gateway.url}/routed/convert/v1/chat/completions"

    def post(token: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.post(url, json=CHAT, headers=headers, timeout=20)

    refused(post(None), 401)
    refused(post(consumer_token("another-consumer")), 401)
    refused(post(consumer_token("routed-key", secret="x" * 32)), 401)
    statuses = [post(consumer_token("routed-key")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    module = next(m for m in gateway.project("routed")["modules"] if m["module"] == "convert")  # type: ignore[index]
    environment = module["environments"][0]
    assert environment["auth"]["mode"] == "jwt"
    assert "jwt-auth" in environment["auth"]["why"]
    assert "response-rewrite" in json.dumps(environment["details"])


def test_a_route_guarded_by_a_plugin_fd2_cannot_apply_is_never_open(
    tower: Tower, make_gateway: MakeGateway, standin: Service
) -> None:
    project = apisix_project(standin, count=100)
    project["project_id"] = "guarded"
    route = project["modules"][1]["config"]["routes"][0]
    del route["plugins"]["jwt-auth"]
    route["plugins"]["key-auth"] = {}
    create(tower, project)
    gateway = make_gateway(tower.url, "--default-auth", "none")
    answer = httpx.post(f"{gateway.url}/guarded/convert/v1/chat/completions", json=CHAT, timeout=20)
    refused(answer, 503)
    assert "key-auth" in answer.json()["error"]["message"]
