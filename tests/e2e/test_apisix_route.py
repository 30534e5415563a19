"""fd2 applies the Control Tower's APISIX route itself: a project manifest in the shape of the
Control Tower's sas2py sample, the OpenAI stand-in as two weighted nodes, the official SDK.

The inference modules name their route (`apisix_route`, `apisix_gateway_module`), which makes
the gateway module their dependency. Auth is off explicitly (`metadata.fd2.modules.<name>.auth`):
the gate's enforcement of the route's `jwt-auth` is tested in
tests/e2e/manifest_cache/test_ct_secure_default.py.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .conftest import (
    Service,
    fd2_argv,
    fd2_env,
    free_port,
    start_service,
    start_standin,
)
from .leaks import LEAKS
from .support import assert_openai_error

PROJECT = "sas2py-e2e"
GATEWAY = "apisix-convert-route"
UPSTREAM_KEY = "gsk-e2e-route-key-5b1d"
JWT_SECRET = "e2e-consumer-jwt-secret-0c4e"
ADMIN_TOKEN = "admin-token-apisix-e2e-91c2"
TEMPLATE_MODEL = "llama-3.1-8b-instant"

for _secret in (UPSTREAM_KEY, JWT_SECRET, ADMIN_TOKEN):
    LEAKS.add_secret(_secret)


def manifest(node_a: str, node_b: str) -> dict[str, Any]:
    headers = {
        "Authorization": "Bearer ${environments.common.secrets.upstream_key}",
        "Accept-Encoding": "identity",
    }
    common_plugins = {
        "jwt-auth": {},
        "request-id": {"header_name": "X-Request-Id", "include_in_response": True},
        "prometheus": {"prefer_name": True},
        "proxy-rewrite": {
            "uri": "/openai/v1/chat/completions",
            "host": "api.groq.example",
            "headers": headers,
        },
        "response-rewrite": {"headers": {"remove": ["Content-Encoding"]}},
    }
    template = {
        "templates": [
            {
                "name": "converter",
                "template": {
                    "model": TEMPLATE_MODEL,
                    "messages": [
                        {"role": "system", "content": "You convert SAS to Python."},
                        {"role": "user", "content": "{{user_input}}"},
                    ],
                },
            }
        ],
        "_meta": {"priority": 2520},
    }
    nodes = {
        "${environments.${environment}.urls.node_a}": 3,
        "${environments.${environment}.urls.node_b}": 1,
    }

    def route(name: str, uri: str, plugins: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "uri": uri,
            "methods": ["POST"],
            "upstream": {
                "type": "roundrobin",
                "nodes": nodes,
                "timeout": {"connect": 5, "send": 30, "read": 30},
            },
            "plugins": plugins,
        }

    def inference(name: str, **config: Any) -> dict[str, Any]:
        return {
            "module_type": "inference_endpoint",
            "name": name,
            "config": {"model_name": "llama-3.1-70b-versatile", "max_tokens": 2000, **config},
        }

    return {
        "project_id": PROJECT,
        "project_name": "SAS to Python (fd2 applies the APISIX routes)",
        "environment": "development",
        "modules": [
            inference(
                "convert",
                endpoint_url="${environments.${environment}.urls.api_base_url}/sas2py/convert",
                apisix_route="convert",
                apisix_gateway_module=GATEWAY,
                temperature=0.3,
            ),
            inference(
                "template",
                endpoint_url="${environments.${environment}.urls.api_base_url}/sas2py/template",
                apisix_route="template",
                apisix_gateway_module=GATEWAY,
            ),
            inference(
                "broken",
                endpoint_url="${environments.${environment}.urls.api_base_url}/sas2py/none",
                apisix_route="missing",
                apisix_gateway_module=GATEWAY,
            ),
            inference(
                "direct",
                endpoint_url="${environments.${environment}.urls.direct}/sas2py/convert",
            ),
            {
                "module_type": "api_gateway",
                "name": GATEWAY,
                "config": {
                    "gateway_type": "apisix",
                    "consumer": {
                        "username": "consumer",
                        "plugins": {
                            "jwt-auth": {
                                "key": "sas2py-consumer-key",
                                "secret": "${environments.${environment}.secrets.jwt_secret_key}",
                            }
                        },
                    },
                    "routes": [
                        route("convert", "/sas2py/convert", common_plugins),
                        route(
                            "template",
                            "/sas2py/template",
                            {**common_plugins, "ai-prompt-template": template},
                        ),
                    ],
                },
            },
        ],
        "environments": {
            # A secret reference reached inside "Bearer ${...}": the header becomes one Secret.
            "common": {"secrets": {"upstream_key": "env:APISIX_E2E_UPSTREAM_KEY"}},
            "development": {
                "secrets": {"jwt_secret_key": JWT_SECRET},
                "urls": {
                    # APISIX's address in the Control Tower's world: fd2 never calls it.
                    "api_base_url": "http://127.0.0.1:9",
                    "node_a": node_a,
                    "node_b": f"http://{node_b}",
                    "direct": f"http://{node_a}",
                },
            },
        },
        "metadata": {
            "fd2": {
                "modules": {
                    name: {"auth": {"mode": "none"}}
                    for name in ("convert", "template", "direct", "broken")
                }
            }
        },
    }


@pytest.fixture(scope="module")
def second_standin(logs_dir: Path) -> Iterator[Service]:
    service = start_standin("standin-b", logs_dir)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, standin: Service, second_standin: Service
) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("apisix-manifests")
    (directory / f"{PROJECT}.json").write_text(
        json.dumps(manifest(standin.address, second_standin.address), indent=2)
    )
    logs = tmp_path_factory.mktemp("apisix-logs")
    env = fd2_env()
    env["FD2_E2E_ADMIN_TOKEN"] = ADMIN_TOKEN
    env["APISIX_E2E_UPSTREAM_KEY"] = UPSTREAM_KEY
    port = free_port()
    argv = fd2_argv(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--manifests",
        str(directory),
        "--default-env",
        "development",
        "--workers",
        "1",
        "--admin-token-ref",
        "env:FD2_E2E_ADMIN_TOKEN",
    )
    service = start_service(
        "fd2-apisix", argv, port=port, ready_path="/healthz", log_dir=logs, env=env
    )
    yield service
    service.stop()


@pytest.fixture
def sdk(gateway: Service) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/{PROJECT}/convert/v1", api_key="unused", max_retries=0, timeout=30
    )
    yield client
    client.close()


USER = {"role": "user", "content": "data a; set b; run;"}


def _seen(content: str | None) -> dict[str, Any]:
    return dict(json.loads(content or "{}"))


def _received(nodes: list[Service], request_id: str) -> dict[str, str]:
    """The headers a stand-in node received with the request of that id."""
    for node in nodes:
        for entry in httpx.get(f"{node.url}/_standin/requests", timeout=5).json():
            if entry["headers"].get("x-request-id") == request_id:
                return dict(entry["headers"])
    raise AssertionError(f"no node received request {request_id}")


def test_a_chat_goes_through_the_route(
    sdk: openai.OpenAI, standin: Service, second_standin: Service
) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="standin-echo", messages=[USER])
    answer = raw.parse()
    seen = _seen(answer.choices[0].message.content)
    assert seen["path"] == "/openai/v1/chat/completions"  # proxy-rewrite's uri
    assert seen["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the route's, not the client's
    assert seen["model"] == "standin-echo"
    assert seen["max_tokens"] == 2000  # the module's own defaults still apply
    assert seen["temperature"] == 0.3
    request_id = raw.headers["x-request-id"]
    assert seen["x_request_id"] == request_id
    headers = _received([standin, second_standin], request_id)
    assert headers["host"] == "api.groq.example"
    assert headers["accept-encoding"] == "identity"


def test_a_stream_goes_through_the_route(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="standin-echo",
            messages=[USER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    seen = (chunks[0].model_extra or {})["standin"]
    assert seen["path"] == "/openai/v1/chat/completions"
    assert seen["authorization"] == f"Bearer {UPSTREAM_KEY}"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"{n};" for n in range(1, 9))
    assert chunks[-1].usage is not None


def test_the_weights_decide_the_node(
    sdk: openai.OpenAI, standin: Service, second_standin: Service
) -> None:
    ports = Counter(
        _seen(
            sdk.chat.completions.create(model="standin-echo", messages=[USER])
            .choices[0]
            .message.content
        )["port"]
        for _ in range(40)
    )
    assert set(ports) == {standin.port, second_standin.port}
    # Weights 3:1; fd2's smooth round robin makes it exact for one worker, 30/10.
    assert 25 <= ports[standin.port] <= 35, ports


def test_a_prompt_template_is_filled_from_the_request(gateway: Service) -> None:
    with openai.OpenAI(
        base_url=f"{gateway.url}/{PROJECT}/template/v1", api_key="unused", max_retries=0
    ) as client:
        answer = client.chat.completions.create(
            model="ignored",
            messages=[],
            extra_body={"template_name": "converter", "user_input": "proc print; run;"},
        )
    seen = _seen(answer.choices[0].message.content)
    assert seen["model"] == TEMPLATE_MODEL
    assert seen["messages"] == [
        {"role": "system", "content": "You convert SAS to Python."},
        {"role": "user", "content": "proc print; run;"},
    ]


def test_a_template_request_without_its_name_is_a_400(gateway: Service) -> None:
    response = httpx.post(
        f"{gateway.url}/{PROJECT}/template/v1/chat/completions",
        json={"model": "m", "messages": [USER]},
        timeout=10,
    )
    assert response.status_code == 400
    error = assert_openai_error(response.content, status=400)
    assert error["param"] == "template_name"


@pytest.mark.parametrize("module", ["convert", "direct"])
def test_other_endpoints_of_a_single_endpoint_module_are_404(gateway: Service, module: str) -> None:
    response = httpx.post(
        f"{gateway.url}/{PROJECT}/{module}/v1/embeddings",
        json={"model": "m", "input": "x"},
        timeout=10,
    )
    assert response.status_code == 404
    error = assert_openai_error(response.content, status=404)
    assert "only /v1/chat/completions" in error["message"]


def test_a_route_that_cannot_be_compiled_answers_503_naming_it(gateway: Service) -> None:
    response = httpx.post(
        f"{gateway.url}/{PROJECT}/broken/v1/chat/completions",
        json={"model": "m", "messages": [USER]},
        timeout=10,
    )
    assert response.status_code == 503
    error = assert_openai_error(response.content, status=503)
    assert "no route 'missing'" in error["message"]
    assert GATEWAY in error["message"]


def test_an_endpoint_url_that_names_one_endpoint_is_used_exactly(gateway: Service) -> None:
    with openai.OpenAI(
        base_url=f"{gateway.url}/{PROJECT}/direct/v1", api_key="unused", max_retries=0
    ) as client:
        answer = client.chat.completions.create(model="standin-echo", messages=[USER])
    seen = _seen(answer.choices[0].message.content)
    assert seen["path"] == "/sas2py/convert"
    assert seen["authorization"] is None


def test_admin_routes_show_the_route_and_what_fd2_does_not_apply(
    gateway: Service, standin: Service, second_standin: Service
) -> None:
    response = httpx.get(
        f"{gateway.url}/admin/routes",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (project,) = [p for p in response.json()["projects"] if p["project"] == PROJECT]
    modules = {m["module"]: m for m in project["modules"]}
    (environment,) = modules["convert"]["environments"]
    assert environment["status"] == "serving", environment
    details = environment["details"]["apisix"]
    assert details["gateway_module"] == GATEWAY
    assert details["route"] == "convert"
    assert details["unimplemented_plugins"] == ["response-rewrite"]
    assert details["upstream"]["nodes"] == {
        f"http://{standin.address}": 3,
        f"http://{second_standin.address}": 1,
    }
    assert details["jwt_auth"] == {"consumer_key": "sas2py-consumer-key", "algorithm": "HS256"}
    assert UPSTREAM_KEY not in response.text
    assert JWT_SECRET not in response.text
    (gateway_env,) = modules[GATEWAY]["environments"]
    assert gateway_env["status"] == "unavailable"  # api_gateway modules themselves are not served
