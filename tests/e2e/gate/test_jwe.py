"""JWE-wrapped access tokens (`dir` / `A256GCM`) from the JWT service stand-in, end to end."""

from __future__ import annotations

import base64
import json
import os
import sys

import httpx
import openai
import pytest

from ..conftest import Service, free_port, start_service
from .conftest import JWT_SCRIPT, JWT_SECRET, STATIC_CLAIMS, start_auth_fd2

JWE_KEY = os.urandom(32)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory, standin: Service):
    directory = tmp_path_factory.mktemp("jwe")
    (directory / "jwt.secret").write_text(JWT_SECRET)
    (directory / "jwe.key").write_text(JWE_KEY.hex())
    config = directory / "service.json"
    config.write_text(
        json.dumps(
            {
                "secret": JWT_SECRET,
                "users": {"alice": {"password": "wonderland"}},
            }
        )
    )
    port = free_port()
    argv = [sys.executable, str(JWT_SCRIPT), "--port", str(port), "--config", str(config)]
    service = start_service("jwt-jwe", argv, port=port, ready_path="/health", log_dir=directory)
    manifests = directory / "manifests"
    manifests.mkdir()
    manifest = {
        "project_id": "sealed",
        "environment": "development",
        "environments": {"development": {}},
        "modules": [
            {
                "module_type": "jwt_config",
                "name": "auth",
                "config": {
                    "service_url": service.url,
                    "secret_key": f"file:{directory / 'jwt.secret'}",
                    # fd2 sends the service this key (as base64) in `api_key_config`, and the
                    # service seals its tokens with it; the hex spelling here is fd2's to read.
                    "jwe_config": {
                        "enabled": True,
                        "encryption_key": f"file:{directory / 'jwe.key'}",
                        "algorithm": "dir",
                        "encryption": "A256GCM",
                        "compression": "DEF",
                    },
                    "claims": {
                        "static": {**STATIC_CLAIMS, "project": "sealed", "key": "sealed-consumer"}
                    },
                },
            },
            {
                "module_type": "inference_endpoint",
                "name": "chat",
                "dependencies": ["auth"],
                "config": {"endpoint_url": f"http://{standin.address}/v1/chat/completions"},
            },
        ],
    }
    (manifests / "sealed.json").write_text(json.dumps(manifest))
    try:
        fd2 = start_auth_fd2(manifests, directory, name="fd2-jwe")
        try:
            yield fd2
        finally:
            fd2.stop()
    finally:
        service.stop()


def test_an_encrypted_token_from_the_service_is_accepted(sealed: Service):
    form = {"username": "alice", "password": "wonderland"}
    tokens = httpx.post(f"{sealed.url}/sealed/auth/token", json=form, timeout=10).json()
    assert tokens["token_type"] == "JWE"
    assert tokens["access_token"].count(".") == 4  # JWE compact form
    header = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[0] + "=="))
    # the service names the consumer key; fd2 asked for no compression it could not undo
    assert header == {"alg": "dir", "enc": "A256GCM", "kid": "sealed-consumer"}
    sdk = openai.OpenAI(base_url=f"{sealed.url}/sealed/chat/v1", api_key=tokens["access_token"])
    with sdk:
        reply = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
    # the refresh token (sealed too) is still no access token
    plain = openai.OpenAI(base_url=f"{sealed.url}/sealed/chat/v1", api_key=tokens["refresh_token"])
    with plain, pytest.raises(openai.AuthenticationError):
        plain.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
