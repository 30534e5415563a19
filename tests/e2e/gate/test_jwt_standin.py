"""The JWT service stand-in answers as the real service (dsp_ai_jwt) was seen to answer, so the
token endpoint's tests exercise fd2 against the real contract (see the stand-in's docstring)."""

from __future__ import annotations

import base64
import json
import sys
import zlib
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..conftest import Service, free_port, start_service
from .conftest import JWT_SCRIPT, JWT_SECRET

KEY = bytes(range(32))
LOGIN = {"username": "alice", "password": "wonderland"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("jwt-standin")
    config = {
        "secret": JWT_SECRET,
        "users": {"alice": {"password": "wonderland", "name": "Alice", "groups": ["g"]}},
        "api_keys": {"named": {"claims": {"static": {"tier": "gold", "exp_hours": 3}}}},
        "base_api_key": {"claims": {"static": {"tier": "base", "rate_limit": 20}}},
    }
    (directory / "service.json").write_text(json.dumps(config))
    port = free_port()
    argv = [sys.executable, str(JWT_SCRIPT), "--port", str(port)]
    argv += ["--config", str(directory / "service.json")]
    started = start_service("jwt-standin", argv, port=port, ready_path="/health", log_dir=directory)
    yield started
    started.stop()


def post(service: Service, body: object, **kwargs) -> httpx.Response:
    return httpx.post(f"{service.url}/token", json=body, timeout=10, **kwargs)


def claims(token: str, secret: str = JWT_SECRET) -> dict:
    return jwt.decode(token, secret, algorithms=["HS256"])


def test_the_services_errors(service: Service):
    form = httpx.post(f"{service.url}/token", data=LOGIN, timeout=10)
    assert (form.status_code, form.json()) == (400, {"error": "Missing JSON in request"})
    missing = post(service, {"username": "alice", "password": ""})
    assert (missing.status_code, missing.json()) == (400, {"error": "Missing username or password"})
    wrong = post(service, {"username": "alice", "password": "x"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid username or password"})
    broken = httpx.post(
        f"{service.url}/token", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.headers["content-type"].startswith("text/html")
    assert post(service, [1]).status_code == 500


def test_claims_come_from_the_inline_config_else_the_named_key_else_the_base_key(service: Service):
    base = post(service, LOGIN).json()
    assert set(base) == {"access_token", "refresh_token"}
    access = claims(base["access_token"])
    assert (access["tier"], access["rate_limit"], access["sub"]) == ("base", 20, "alice")
    assert (access["type"], access["fresh"], access["exp"] - access["iat"]) == (
        "access",
        True,
        3600,
    )
    refresh = claims(base["refresh_token"])
    assert (refresh["type"], refresh["fresh"], refresh["tier"]) == ("refresh", False, "base")
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600
    named = claims(post(service, {**LOGIN, "api_key": "named"}).json()["access_token"])
    assert (named["tier"], named["exp"] - named["iat"]) == ("gold", 3 * 3600)
    assert "exp_hours" not in named
    inline = {"claims": {"static": {"tier": "inline", "type": "access"}}}
    both = post(service, {**LOGIN, "api_key": "named", "api_key_config": inline}).json()
    assert claims(both["access_token"])["tier"] == "inline"
    # the key's claims are applied over the service's own: a `type` claim reaches refresh tokens
    assert claims(both["refresh_token"])["type"] == "access"


def test_a_custom_secret_signs_the_tokens(service: Service):
    answer = post(service, {**LOGIN, "secret": "another-secret-for-the-custom-path"}).json()
    assert set(answer) == {"access_token", "refresh_token", "note"}
    assert claims(answer["access_token"], "another-secret-for-the-custom-path")["sub"] == "alice"
    with pytest.raises(jwt.InvalidSignatureError):
        claims(answer["access_token"])


def test_jwe_seals_the_token_as_the_service_does(service: Service):
    config = {
        "claims": {"static": {"key": "consumer"}},
        "jwe_config": {
            "enabled": True,
            "encryption_key": base64.b64encode(KEY).decode(),
            "compression": "DEF",
        },
    }
    answer = post(service, {**LOGIN, "api_key_config": config}).json()
    assert (answer["token_type"], answer["encryption"]) == ("JWE", "A256GCM")
    protected, encrypted_key, iv, ciphertext, tag = answer["access_token"].split(".")

    def unb64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    header = json.loads(unb64(protected))
    assert header == {"alg": "dir", "enc": "A256GCM", "kid": "consumer", "zip": "DEF"}
    assert encrypted_key == ""
    plain = AESGCM(KEY).decrypt(unb64(iv), unb64(ciphertext) + unb64(tag), protected.encode())
    sealed = json.loads(zlib.decompress(plain, -zlib.MAX_WBITS))
    assert claims(sealed["jwt"])["key"] == "consumer"
    short = {"jwe_config": {"enabled": True, "encryption_key": "short"}}
    failed = post(service, {**LOGIN, "api_key_config": short})
    assert failed.status_code == 500
    assert failed.json()["error"].startswith("JWE encryption failed: Invalid key size")


def test_dynamic_claims_are_recorded_never_run(service: Service):
    dynamic = {"pwn": {"type": "function", "module": "os", "function": "system", "args": {}}}
    answer = post(service, {**LOGIN, "api_key_config": {"claims": {"dynamic": dynamic}}})
    assert "pwn" not in claims(answer.json()["access_token"])
    received = httpx.get(f"{service.url}/_standin/received", timeout=10).json()[-1]
    assert received["dynamic"] == [{"claim": "pwn", **dynamic["pwn"]}]
    assert "wonderland" not in json.dumps(received)  # the field is listed, its value never
