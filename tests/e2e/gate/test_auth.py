"""Authentication and authorisation end to end: fd2, the JWT service stand-in, the upstream
stand-in, all real processes; clients are the OpenAI SDK, httpx, or raw bytes on a socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import openai
import pytest

from ..support import assert_openai_error, chat_body, raw_request
from .conftest import (
    JWT_SECRET,
    KEYS,
    PEPPER,
    AuthGateway,
)

CHAT = "/acme/chat/v1/chat/completions"
INVALID = "Invalid credentials."
FORBIDDEN = "These credentials are not allowed to use this resource."
NEVER_SHOWN = (JWT_SECRET.encode(), PEPPER.encode(), *(key.encode() for key in KEYS.values()))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def post(gw: AuthGateway, path: str, credential: str | None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    body = kwargs.pop("body", chat_body("gpt-4o-mini"))
    return httpx.post(gw.fd2.url + path, content=body, headers=headers, timeout=20, **kwargs)


def assert_refused(response: httpx.Response, status: int, credential: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = assert_openai_error(response.content, status=status)
    assert error["message"] == (INVALID if status == 401 else FORBIDDEN)
    assert response.headers.get("x-request-id")
    everything = response.content + b"".join(k + v for k, v in response.headers.raw)
    for secret in NEVER_SHOWN:
        assert secret not in everything
    if credential:
        assert credential.encode()[:40] not in everything
    if status == 401:
        assert response.headers["www-authenticate"].startswith('Bearer realm="fd2"')


def test_the_token_endpoint_relays_the_services_answers(auth_gateway: AuthGateway):
    login = {"username": "alice", "password": "wonderland"}
    through = httpx.post(f"{auth_gateway.fd2.url}/acme/auth/token", json=login, timeout=10)
    assert through.status_code == 200
    assert set(through.json()) == {"access_token", "refresh_token"}
    wrong = {"username": "alice", "password": "nope"}
    refused = httpx.post(f"{auth_gateway.fd2.url}/acme/auth/token", json=wrong, timeout=10)
    assert refused.status_code == 401
    assert refused.json() == {"error": "Invalid username or password"}  # the service's own


def test_a_token_from_the_service_works_with_the_sdk(auth_gateway: AuthGateway):
    form = {"username": "alice", "password": "wonderland"}
    token = httpx.post(f"{auth_gateway.fd2.url}/acme/auth/token", json=form, timeout=10).json()[
        "access_token"
    ]
    sdk = openai.OpenAI(base_url=f"{auth_gateway.fd2.url}/acme/chat/v1", api_key=token)
    with sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.parse().choices[0].message.content
        assert raw.headers["x-ratelimit-limit-requests"]
        refresh = httpx.post(
            f"{auth_gateway.fd2.url}/acme/auth/token", json=form, timeout=10
        ).json()["refresh_token"]
        bad = openai.OpenAI(base_url=f"{auth_gateway.fd2.url}/acme/chat/v1", api_key=refresh)
        with bad, pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )


def test_missing_credentials(auth_gateway: AuthGateway):
    response = post(auth_gateway, CHAT, None)
    assert response.status_code == 401
    assert_openai_error(response.content)
    assert response.headers["www-authenticate"] == 'Bearer realm="fd2"'


def _forged(gw: AuthGateway, case: str) -> str:
    now = int(time.time())
    if case == "alg-none":
        payload = json.loads(base64.urlsafe_b64decode(gw.token().split(".")[1] + "=="))
        none_header = b64(b'{"alg":"none","typ":"JWT"}')
        return f"{none_header}.{b64(json.dumps(payload).encode())}."
    if case == "tampered-payload":
        header, _, signature = gw.token().split(".")
        other = json.loads(base64.urlsafe_b64decode(gw.token().split(".")[1] + "=="))
        other["models"] = ["gpt-4o"]
        return f"{header}.{b64(json.dumps(other).encode())}.{signature}"
    if case == "tampered-signature":
        header, payload, signature = gw.token().split(".")
        return f"{header}.{payload}.{signature[:-3]}{'AAA' if signature[-3:] != 'AAA' else 'BBB'}"
    changes = {
        "expired": {"exp": now - 120, "iat": now - 700, "nbf": now - 700},
        "not-yet-valid": {"nbf": now + 300},
        "wrong-issuer": {"iss": "someone-else"},
        "wrong-audience": {"aud": "another-gateway"},
        "refresh-token": {"type": "refresh"},
        "oversized": {"padding": "x" * 9000},
    }[case]
    return gw.token(**changes)


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not-yet-valid",
        "wrong-issuer",
        "wrong-audience",
        "alg-none",
        "tampered-payload",
        "tampered-signature",
        "refresh-token",
        "oversized",
    ],
)
def test_invalid_tokens_get_401(auth_gateway: AuthGateway, case: str):
    token = _forged(auth_gateway, case)
    assert_refused(post(auth_gateway, CHAT, token), 401, token)


def test_an_hs_token_signed_with_the_rsa_public_key_gets_401(auth_gateway: AuthGateway):
    gw = auth_gateway
    genuine = __import__("jwt").encode(
        {"sub": "a", "exp": int(time.time()) + 60, "project": "acme", "environment": "dev"},
        gw.rsa_private,
        algorithm="RS256",
    )
    path = "/acme/rs-chat/v1/chat/completions"
    assert post(gw, path, genuine).status_code == 200
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    payload = genuine.split(".")[1]
    signature = hmac.new(gw.rsa_public_pem, f"{header}.{payload}".encode(), hashlib.sha256)
    confused = f"{header}.{payload}.{b64(signature.digest())}"
    assert_refused(post(gw, path, confused), 401, confused)


@pytest.mark.parametrize(
    ("changes", "body"),
    [
        pytest.param({"project": "billing"}, chat_body("gpt-4o-mini"), id="wrong-project"),
        pytest.param({"environment": "production"}, chat_body("gpt-4o-mini"), id="wrong-env"),
        pytest.param({}, chat_body("gpt-4o"), id="model-not-allowed"),
        pytest.param(
            {"endpoint_permissions": ["/v1/embeddings"]}, chat_body("gpt-4o-mini"), id="endpoint"
        ),
        pytest.param({"project": None}, chat_body("gpt-4o-mini"), id="no-project-claim"),
    ],
)
def test_valid_tokens_outside_their_grant_get_403(auth_gateway: AuthGateway, changes, body):
    token = auth_gateway.token(**changes)
    assert_refused(post(auth_gateway, CHAT, token, body=body), 403, token)


def test_endpoint_permissions_allow_what_they_list(auth_gateway: AuthGateway):
    token = auth_gateway.token(endpoint_permissions=["/v1/chat/completions"])
    assert post(auth_gateway, CHAT, token).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        b"Basic YWxpY2U6d29uZGVybGFuZA==",
        b"Bearer",
        b"Bearer not a token",
        b"Bearer \xff\xfe\x00garbage",
        b"Bearer " + b"A" * 20000,
        b"Bearer a.b.c",
        b"Bearer ....",
    ],
)
def test_garbage_in_the_header_gets_401(auth_gateway: AuthGateway, value: bytes):
    response = raw_request(
        auth_gateway.fd2.port,
        "POST",
        CHAT.encode(),
        [(b"authorization", value), (b"content-type", b"application/json")],
        chat_body("gpt-4o-mini"),
    )
    assert response.status in (400, 401, 431), response
    assert b"garbage" not in response.body and b"AAAAAAAAAA" not in response.body
    if response.status == 401:
        assert_openai_error(response.body)


@pytest.mark.parametrize(
    "smuggled",
    [
        b"Bearer x\r\nX-Injected: 1",
        b"Bearer x\rX-Injected: 1",
        b"Bearer x\nX-Injected: 1",
        b"Bearer x\r\n X-Injected: folded",
        b"Bearer x%0d%0aX-Injected:%201",
    ],
)
def test_header_injection_is_refused_and_never_reflected(auth_gateway: AuthGateway, smuggled):
    response = raw_request(
        auth_gateway.fd2.port,
        "POST",
        CHAT.encode(),
        [(b"content-type", b"application/json"), (b"authorization", smuggled)],
        chat_body("gpt-4o-mini"),
    )
    assert response.status in (400, 401), response
    assert response.header("x-injected") is None
    assert b"Injected" not in response.body


def test_api_keys_in_each_header(auth_gateway: AuthGateway):
    key = KEYS["all"]
    for headers in (
        {"Authorization": f"Bearer {key}"},
        {"api-key": key},
        {"x-api-key": key},
    ):
        response = post(auth_gateway, "/acme/keyed/v1/chat/completions", None, headers=headers)
        assert response.status_code == 200, (headers.keys(), response.text)
    sdk = openai.OpenAI(base_url=f"{auth_gateway.fd2.url}/acme/embed/v1", api_key=key)
    with sdk:
        assert sdk.embeddings.create(model="text-embedding-3-small", input="x").data


def test_either_mode_takes_a_token_too(auth_gateway: AuthGateway):
    sdk = openai.OpenAI(
        base_url=f"{auth_gateway.fd2.url}/acme/embed/v1", api_key=auth_gateway.token()
    )
    with sdk:
        assert sdk.embeddings.create(model="text-embedding-3-small", input="x").data
    narrow = openai.OpenAI(
        base_url=f"{auth_gateway.fd2.url}/acme/embed/v1",
        api_key=auth_gateway.token(models=["gpt-4o-mini"]),
        max_retries=0,
    )
    with narrow, pytest.raises(openai.PermissionDeniedError):  # its models do not include it
        narrow.embeddings.create(model="text-embedding-3-small", input="x")


def test_two_different_credentials_in_one_request_get_401(auth_gateway: AuthGateway):
    headers = {"api-key": KEYS["keyed-only"]}
    response = post(auth_gateway, "/acme/keyed/v1/chat/completions", KEYS["all"], headers=headers)
    assert_refused(response, 401)


@pytest.mark.parametrize(
    ("key", "path", "model", "status"),
    [
        pytest.param(KEYS["other"], "/acme/keyed", "gpt-4o-mini", 401, id="other-project"),
        pytest.param(KEYS["all"] + "x", "/acme/keyed", "gpt-4o-mini", 401, id="one-char-more"),
        pytest.param(KEYS["all"][:-1] + "1", "/acme/keyed", "gpt-4o-mini", 401, id="last-char"),
        pytest.param(KEYS["keyed-only"], "/acme/embed", "gpt-4o-mini", 403, id="other-module"),
        pytest.param(KEYS["keyed-only"], "/acme/keyed", "gpt-4o", 403, id="model"),
        pytest.param(KEYS["staging-only"], "/acme/keyed", "gpt-4o-mini", 403, id="environment"),
        pytest.param(KEYS["all"], "/acme/chat", "gpt-4o-mini", 401, id="key-on-a-jwt-module"),
    ],
)
def test_api_keys_outside_their_scope(auth_gateway: AuthGateway, key, path, model, status):
    response = post(auth_gateway, f"{path}/v1/chat/completions", key, body=chat_body(model))
    assert_refused(response, status, key)


def test_the_other_projects_key_works_on_its_own_project(auth_gateway: AuthGateway):
    assert post(auth_gateway, "/other/chat/v1/chat/completions", KEYS["other"]).status_code == 200
