"""JWE-wrapped access tokens (`dir` / `A256GCM`) from the JWT service stand-in, end to end."""

from __future__ import annotations

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
                "api_keys": {"k": {**STATIC_CLAIMS, "project": "sealed"}},
                "jwe_key_hex": JWE_KEY.hex(),
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
                    "jwe_config": {
                        "enabled": True,
                        "encryption_key": f"file:{directory / 'jwe.key'}",
                        "algorithm": "dir",
                        "encryption": "A256GCM",
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
    form = {"username": "alice", "password": "wonderland", "api_key": "k"}
    tokens = httpx.post(f"{sealed.url}/sealed/auth/token", json=form, timeout=10).json()
    assert tokens["access_token"].count(".") == 4  # JWE compact form
    sdk = openai.OpenAI(base_url=f"{sealed.url}/sealed/chat/v1", api_key=tokens["access_token"])
    with sdk:
        reply = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
    # the plain refresh token (and any unencrypted token) is refused where JWE is required
    plain = openai.OpenAI(base_url=f"{sealed.url}/sealed/chat/v1", api_key=tokens["refresh_token"])
    with plain, pytest.raises(openai.AuthenticationError):
        plain.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
