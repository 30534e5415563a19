"""The token endpoint against the JWT service stand-in, all real processes: a client sends only its
login; the claims, the signing secret and the dynamic claims are never the caller's to choose, and
a token obtained through fd2 gets no more on an inference route than the jwt module grants."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from ..conftest import LEAKS, Service, free_port, start_service
from ..support import assert_openai_error, chat_body
from .conftest import JWT_SCRIPT, JWT_SECRET, start_auth_fd2

CLAIM_SECRET = "claim-secret-value-for-the-token-tests-7f3a"
SERVICE_KEY_NAME = "svc-tokens-key"
LEAKS.add_secret(CLAIM_SECRET)
USERS = ("alice", "bob", "carol", "dave", "erin", "mallory")
MODULE_STATIC = {
    "environment": "${environment}",
    "models": ["gpt-4o-mini"],
    "rate_limit": 3,
    "upstream_key": "${environments.common.secrets.claim_key}",
}
MODULE_DYNAMIC = {
    "quota": {
        "type": "function",
        "module": "claims.quota",
        "function": "get_remaining_quota",
        "args": {"user_id": "{user_id}"},
    }
}


@dataclass
class Tokens:
    fd2: Service
    jwt_service: Service

    def token(self, module: str, body: Any, **kwargs: Any) -> httpx.Response:
        url = f"{self.fd2.url}/tokens/{module}/token"
        if isinstance(body, bytes):
            return httpx.post(url, content=body, timeout=20, **kwargs)
        return httpx.post(url, json=body, timeout=20, **kwargs)

    def chat(self, module: str, token: str | None, model: str = "gpt-4o-mini", **headers: str):
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(
            f"{self.fd2.url}/tokens/{module}/v1/chat/completions",
            content=chat_body(model),
            headers=headers,
            timeout=20,
        )

    def received(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.jwt_service.url}/_standin/received", timeout=10)
        return list(answer.json())


def _jwt_module(name: str, **config: Any) -> dict[str, Any]:
    return {
        "module_type": "jwt_config",
        "name": name,
        "config": {
            "service_url": "${environments.${environment}.urls.jwt}",
            "secret_key": "${environments.common.secrets.jwt_secret_key}",
            **config,
        },
    }


def _chat(name: str, auth: str, upstream: str) -> dict[str, Any]:
    return {
        "module_type": "inference_endpoint",
        "name": name,
        "dependencies": [auth],
        "config": {"model_name": "gpt-4o-mini", "endpoint_url": f"{upstream}/chat/completions"},
    }


def _manifest(directory: Path, jwt_url: str, upstream: str, silent: int) -> dict[str, Any]:
    (directory / "jwt.secret").write_text(JWT_SECRET)
    (directory / "claim.key").write_text(CLAIM_SECRET)
    closed = free_port()  # nothing listens there
    return {
        "project_id": "tokens",
        "environment": "development",
        "environments": {
            "common": {
                "secrets": {
                    "jwt_secret_key": f"file:{directory / 'jwt.secret'}",
                    "claim_key": f"file:{directory / 'claim.key'}",
                    "groq_api_key": "env:TOKENS_TEST_GROQ_KEY_NEVER_SET",
                }
            },
            "development": {"urls": {"jwt": jwt_url}},
            "production": {"urls": {"jwt": jwt_url}},
        },
        "modules": [
            _jwt_module(
                "auth",
                id="tokens-jwt",
                owner="token tests",
                rate_limit_window="minute",
                claims={"static": MODULE_STATIC, "dynamic": MODULE_DYNAMIC},
            ),
            # The Control Tower's jwe_test sample: a claim reaching a secret that is not there.
            _jwt_module(
                "broken-auth",
                claims={
                    "static": {
                        "environment": "${environment}",
                        "groq_api_key": "${environments.common.secrets.groq_api_key}",
                    }
                },
            ),
            _jwt_module("keyed-auth", allowed_api_keys=[SERVICE_KEY_NAME]),
            _jwt_module("gone-auth", service_url=f"http://127.0.0.1:{closed}"),
            _jwt_module("odd-auth", service_url=f"{jwt_url}/elsewhere"),
            _jwt_module(
                "slow-auth", service_url=f"http://127.0.0.1:{silent}", timeouts={"total_s": 1}
            ),
            _chat("chat", "auth", upstream),
            _chat("broken-chat", "broken-auth", upstream),
            _chat("keyed-chat", "keyed-auth", upstream),
        ],
    }


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for connection in held:
            connection.close()


@pytest.fixture(scope="module")
def tokens(
    tmp_path_factory: pytest.TempPathFactory, standin: Service, silent_port: int
) -> Iterator[Tokens]:
    directory = tmp_path_factory.mktemp("tokens")
    users = {name: {"password": f"{name}-pw", "name": name.title()} for name in USERS}
    key_claims = {"project": "tokens", "environment": "development", "models": ["gpt-4o-mini"]}
    (directory / "service.json").write_text(
        json.dumps(
            {
                "secret": JWT_SECRET,
                "users": users,
                "api_keys": {SERVICE_KEY_NAME: {"claims": {"static": key_claims}}},
            }
        )
    )
    port = free_port()
    argv = [sys.executable, str(JWT_SCRIPT), "--port", str(port)]
    argv += ["--config", str(directory / "service.json")]
    service = start_service("jwt-tokens", argv, port=port, ready_path="/health", log_dir=directory)
    manifests = directory / "manifests"
    manifests.mkdir()
    upstream = f"http://{standin.address}/v1"
    manifest = _manifest(directory, service.url, upstream, silent_port)
    (manifests / "tokens.json").write_text(json.dumps(manifest))
    try:
        fd2 = start_auth_fd2(manifests, directory, name="fd2-tokens")
        try:
            yield Tokens(fd2, service)
        finally:
            fd2.stop()
    finally:
        service.stop()


def login(user: str) -> dict[str, str]:
    return {"username": user, "password": f"{user}-pw"}


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, JWT_SECRET, algorithms=["HS256"])


def test_a_login_gets_the_modules_claims_and_nothing_of_fd2s(tokens: Tokens):
    answer = tokens.token("auth", login("alice"))
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"access_token", "refresh_token"}
    assert answer.headers["cache-control"] == "no-store"
    claims = claims_of(answer.json()["access_token"])
    assert claims["project"] == "tokens"  # added by fd2: the token is for this project
    assert claims["environment"] == "development"  # ${environment}, resolved for the route
    assert (claims["models"], claims["rate_limit"], claims["sub"]) == (["gpt-4o-mini"], 3, "alice")
    assert claims["upstream_key"] == CLAIM_SECRET  # a reached secret, resolved per request
    sent = tokens.received()[-1]
    assert sent["fields"] == ["api_key_config", "password", "username"]
    assert not sent["secret"]
    config = sent["api_key_config"]
    # only what the service reads: no service URL, no verification secret, no fd2 settings
    assert set(config) == {"id", "owner", "claims"}
    assert config["claims"]["static"] == {
        **MODULE_STATIC,
        "project": "tokens",
        "environment": "development",
        "upstream_key": CLAIM_SECRET,
    }
    assert config["claims"]["dynamic"] == MODULE_DYNAMIC
    # the stand-in never runs a function: it records what it was asked to run
    assert [d["module"] for d in sent["dynamic"]] == ["claims.quota"]


def test_a_token_is_for_the_environment_it_was_asked_in(tokens: Tokens):
    answer = tokens.token("auth", login("bob"), headers={"X-Environment": "prod"})
    token = answer.json()["access_token"]
    assert claims_of(token)["environment"] == "production"
    assert tokens.chat("chat", token, **{"X-Environment": "production"}).status_code == 200
    assert tokens.chat("chat", token).status_code == 403  # development


ESCALATIONS = [
    pytest.param(
        "api_key_config",
        {
            "claims": {
                "static": {
                    "project": "tokens",
                    "environment": "production",
                    "models": ["gpt-4"],
                    "rate_limit": 1_000_000,
                }
            }
        },
        id="api_key_config",
    ),
    pytest.param("secret", "attackers-own-signing-secret", id="secret"),
    pytest.param(
        "api_key_config",
        {
            "claims": {
                "dynamic": {
                    "pwn": {
                        "type": "function",
                        "module": "os",
                        "function": "system",
                        "args": {"command": "touch /tmp/fd2-pwned"},
                    }
                }
            }
        },
        id="dynamic-claims",
    ),
    pytest.param("claims", {"static": {"models": ["gpt-4"]}}, id="claims"),
    pytest.param("rate_limit", 1_000_000, id="rate_limit"),
    pytest.param("models", ["gpt-4"], id="models"),
    pytest.param("api_key", SERVICE_KEY_NAME, id="api_key-not-allowed-here"),
]


@pytest.mark.parametrize(("field", "value"), ESCALATIONS)
def test_escalation_attempts_are_refused_before_the_service_hears_of_them(
    tokens: Tokens, field: str, value: Any
):
    before = len(tokens.received())
    answer = tokens.token("auth", {**login("mallory"), field: value})
    error = assert_openai_error(answer.content, status=400)
    assert answer.status_code == 400
    assert error["param"] == field
    assert f"'{field}'" in error["message"]
    assert answer.headers["x-request-id"]
    assert len(tokens.received()) == before  # nothing reached the JWT service


def test_the_token_gives_no_more_than_the_module_grants(tokens: Tokens):
    # What mallory tried to add above is refused; what the login gets is the module's grant:
    token = tokens.token("auth", login("mallory")).json()["access_token"]
    claims = claims_of(token)
    assert (claims["models"], claims["rate_limit"], claims["environment"]) == (
        ["gpt-4o-mini"],
        3,
        "development",
    )
    assert tokens.chat("chat", token, model="gpt-4").status_code == 403
    assert tokens.chat("chat", token, **{"X-Environment": "production"}).status_code == 403
    answers = [tokens.chat("chat", token) for _ in range(4)]
    # rate_limit 3 per minute (the module's rate_limit_window): the fourth waits ~20 s
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "3"
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 20
    never_run = [d for entry in tokens.received() for d in entry["dynamic"]]
    assert {d["module"] for d in never_run} == {"claims.quota"}  # the module's, never "os"


def test_a_claim_reaching_a_missing_secret_fails_only_its_token_request(tokens: Tokens):
    before = len(tokens.received())
    answer = tokens.token("broken-auth", login("carol"))
    error = assert_openai_error(answer.content, status=503)
    assert answer.status_code == 503
    assert "config.claims.static.groq_api_key" in error["message"]
    assert "TOKENS_TEST_GROQ_KEY_NEVER_SET" not in answer.text
    assert len(tokens.received()) == before
    # ...while the verifier of the routes that depend on the module works as ever
    now = int(time.time())
    grant = {"sub": "carol", "project": "tokens", "environment": "development", "type": "access"}
    good = jwt.encode({**grant, "iat": now, "exp": now + 60}, JWT_SECRET, algorithm="HS256")
    assert tokens.chat("broken-chat", good).status_code == 200
    assert tokens.chat("broken-chat", None).status_code == 401
    forged = jwt.encode({**grant, "exp": now + 60}, "not-the-secret-" * 3, algorithm="HS256")
    assert tokens.chat("broken-chat", forged).status_code == 401


def test_api_key_logins_where_the_module_allows_them(tokens: Tokens):
    answer = tokens.token("keyed-auth", {**login("dave"), "api_key": SERVICE_KEY_NAME})
    assert answer.status_code == 200, answer.text
    sent = tokens.received()[-1]
    # the named key's claims decide, so no api_key_config goes with it
    assert sent["fields"] == ["api_key", "password", "username"]
    assert tokens.chat("keyed-chat", answer.json()["access_token"]).status_code == 200
    before = len(tokens.received())
    other = tokens.token("keyed-auth", {**login("dave"), "api_key": "some-other-key"})
    error = assert_openai_error(other.content, status=403)
    assert (other.status_code, error["param"]) == (403, "api_key")
    assert "some-other-key" not in other.text
    assert len(tokens.received()) == before


@pytest.mark.parametrize(
    ("body", "headers", "param"),
    [
        pytest.param(b"username=erin&password=erin-pw", {}, None, id="form-encoded"),
        pytest.param(b"[1, 2]", {"content-type": "application/json"}, None, id="array"),
        pytest.param(b"", {}, None, id="empty"),
        pytest.param({"username": "erin"}, {}, "password", id="no-password"),
        pytest.param({"username": 5, "password": "x"}, {}, "username", id="number"),
    ],
)
def test_bad_bodies_get_fd2s_own_400(tokens: Tokens, body: Any, headers: dict, param: Any):
    before = len(tokens.received())
    answer = tokens.token("auth", body, headers=headers)
    error = assert_openai_error(answer.content, status=400)
    assert (answer.status_code, error["param"]) == (400, param)
    assert len(tokens.received()) == before


def test_the_services_own_errors_pass_through(tokens: Tokens):
    answer = tokens.token("auth", {"username": "erin", "password": "wrong"})
    assert answer.status_code == 401
    assert answer.json() == {"error": "Invalid username or password"}
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize(
    ("module", "status"),
    [("gone-auth", 502), ("odd-auth", 502), ("slow-auth", 504)],
)
def test_a_service_that_cannot_answer_gets_fd2s_own_error(tokens: Tokens, module: str, status: int):
    answer = tokens.token(module, login("erin"))
    assert_openai_error(answer.content, status=status)
    assert answer.status_code == status
    assert "erin-pw" not in answer.text
