"""Routing: path and header addressing, environments, names, unknown targets, methods."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import openai
import pytest

from .conftest import Service
from .support import assert_openai_error, chat_body, raw_request

MESSAGES = [{"role": "user", "content": "route me"}]


def _seen(answer: object) -> dict[str, object]:
    content = answer.choices[0].message.content  # type: ignore[attr-defined]
    return dict(json.loads(content))


def test_healthz(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200


def test_path_routing_reaches_the_upstream(client: openai.OpenAI, standin: Service) -> None:
    answer = client.chat.completions.create(model="standin-echo", messages=MESSAGES)
    seen = _seen(answer)
    assert seen["path"] == "/v1/chat/completions"
    assert seen["port"] == standin.port
    assert seen["model"] == "standin-echo"


def test_upstream_connections_are_kept_alive(client: openai.OpenAI) -> None:
    """Sequential requests reuse pooled upstream connections instead of opening one each."""
    ports = {
        _seen(client.chat.completions.create(model="standin-echo", messages=MESSAGES))[
            "client_port"
        ]
        for _ in range(10)
    }
    assert len(ports) <= 2, f"{len(ports)} upstream connections for 10 sequential requests"


def test_header_routing_with_plain_path(make_client: Callable[..., openai.OpenAI]) -> None:
    sdk = make_client("", default_headers={"X-Project-Module": "acme/chat"})
    seen = _seen(sdk.chat.completions.create(model="standin-echo", messages=MESSAGES))
    assert seen["authorization"] == "Bearer test-acme-key"


def test_header_routing_with_httpx(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        content=chat_body(),
        headers={"X-Project-Module": "billing/assistant", "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    seen = json.loads(response.json()["choices"][0]["message"]["content"])
    assert seen["authorization"] == "Bearer test-billing-key"


@pytest.mark.parametrize("environment", ["dev", "development", "DEV", "Development"])
def test_development_aliases_answer(
    make_client: Callable[..., openai.OpenAI], environment: str
) -> None:
    sdk = make_client("acme/chat", default_headers={"X-Environment": environment})
    seen = _seen(sdk.chat.completions.create(model="standin-echo", messages=MESSAGES))
    assert seen["model"] == "standin-echo"


@pytest.mark.parametrize(
    ("project_module", "environment"),
    [
        ("acme/chat", "stg"),
        ("acme/chat", "staging"),
        ("billing/assistant", "stg"),
        ("billing/assistant", "staging"),
        ("billing/assistant", "prod"),
        ("billing/assistant", "production"),
    ],
)
def test_environments_with_unreachable_upstreams_give_502(
    make_client: Callable[..., openai.OpenAI], project_module: str, environment: str
) -> None:
    sdk = make_client(project_module, default_headers={"X-Environment": environment})
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="standin-echo", messages=MESSAGES)
    assert caught.value.status_code == 502
    assert_openai_error(caught.value.response.content, status=502)


@pytest.mark.parametrize("project_module", ["acme/chat", "billing/assistant"])
def test_environment_the_module_lacks_is_400_listing_valid_ones(
    http: httpx.Client, project_module: str
) -> None:
    response = http.post(
        f"/{project_module}/v1/chat/completions",
        content=chat_body(),
        headers={"X-Environment": "qa"},
    )
    assert response.status_code == 400
    error = assert_openai_error(response.content, status=400)
    message = error["message"]
    for long_name, short_name in (
        ("development", "dev"),
        ("staging", "stg"),
        ("production", "prod"),
    ):
        assert long_name in message or short_name in message, message
    assert "common" not in message


# Sent byte for byte: an HTTP client would normalise `..` and re-encode the rest.
INVALID_TARGETS = [
    pytest.param(b"/../chat/v1/chat/completions", id="dotdot-project"),
    pytest.param(b"/acme/../v1/chat/completions", id="dotdot-module"),
    pytest.param(b"/ac%2Fme/chat/v1/chat/completions", id="encoded-slash"),
    pytest.param(b"/acme%2fchat/x/v1/chat/completions", id="encoded-slash-lower"),
    pytest.param(b"//chat/v1/chat/completions", id="empty-project"),
    pytest.param(b"/acme//v1/chat/completions", id="empty-module"),
    pytest.param(b"/" + b"a" * 65 + b"/chat/v1/chat/completions", id="65-chars-project"),
    pytest.param(b"/acme/" + b"m" * 65 + b"/v1/chat/completions", id="65-chars-module"),
    pytest.param(b"/acm%C3%A9/chat/v1/chat/completions", id="non-ascii-encoded"),
    pytest.param(b"/acm\xc3\xa9/chat/v1/chat/completions", id="non-ascii-raw"),
    pytest.param(b"/acme/ch%20at/v1/chat/completions", id="space"),
]


@pytest.mark.parametrize("target", INVALID_TARGETS)
def test_invalid_names_in_the_path_are_400(fd2: Service, target: bytes) -> None:
    response = raw_request(fd2.port, "POST", target, [], chat_body())
    assert response.status == 400, (response.status, response.body[:300])
    assert_openai_error(response.body, status=400)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"../chat", id="dotdot"),
        pytest.param(b"acme/", id="empty-module"),
        pytest.param(b"/chat", id="empty-project"),
        pytest.param(b"acme", id="no-slash"),
        pytest.param(b"acme/chat/extra", id="three-parts"),
        pytest.param(b"a" * 65 + b"/chat", id="65-chars"),
        pytest.param(b"acm\xc3\xa9/chat", id="non-ascii"),
        pytest.param(b"acme%2Fchat/x", id="encoded-slash"),
    ],
)
def test_invalid_names_in_the_header_are_400(fd2: Service, value: bytes) -> None:
    response = raw_request(
        fd2.port, "POST", b"/v1/chat/completions", [(b"x-project-module", value)], chat_body()
    )
    assert response.status == 400, (response.status, response.body[:300])
    assert_openai_error(response.body, status=400)


def test_64_char_names_are_valid_but_unknown(fd2: Service) -> None:
    target = b"/" + b"p" * 64 + b"/" + b"m" * 64 + b"/v1/chat/completions"
    response = raw_request(fd2.port, "POST", target, [], chat_body())
    assert response.status == 404, (response.status, response.body[:300])
    assert_openai_error(response.body, status=404)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/nobody/chat/v1/chat/completions", id="unknown-project"),
        pytest.param("/acme/nothing/v1/chat/completions", id="unknown-module"),
        pytest.param("/acme/chat/v1/nothing", id="unknown-endpoint"),
        pytest.param("/acme/chat/v2/chat/completions", id="unknown-version"),
        pytest.param("/acme/legacy/v1/chat/completions", id="disabled-module"),
        pytest.param("/acme/observability/v1/chat/completions", id="monitoring-type"),
        pytest.param("/acme/auth/v1/chat/completions", id="jwt-config-type"),
        pytest.param("/acme/vault-manager/v1/chat/completions", id="vault-type"),
    ],
)
def test_not_found(http: httpx.Client, path: str) -> None:
    response = http.post(path, content=chat_body())
    assert response.status_code == 404, response.text
    assert_openai_error(response.content, status=404)


def test_not_found_through_the_sdk(make_client: Callable[..., openai.OpenAI]) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        make_client("acme/legacy").chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.status_code == 404


def test_unknown_module_in_the_header_is_404(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", content=chat_body(), headers={"X-Project-Module": "acme/legacy"}
    )
    assert response.status_code == 404
    assert_openai_error(response.content, status=404)


def test_wrong_method_is_405_with_allow(http: httpx.Client) -> None:
    response = http.get("/acme/chat/v1/chat/completions")
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert "POST" in allowed
    assert "GET" not in allowed
    assert_openai_error(response.content, status=405)
