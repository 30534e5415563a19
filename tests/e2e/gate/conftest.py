"""A gateway with auth and limits on: the JWT service stand-in, the acme example wired to it,
API keys stored as hashes, an RS256 module, and fd2 started with a key pepper."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..conftest import (
    EXAMPLE_MANIFESTS,
    EXAMPLE_UPSTREAM,
    LEAKS,
    Service,
    fd2_argv,
    fd2_env,
    free_port,
    start_service,
)
from ..support import REPO

JWT_SCRIPT = REPO / "tests" / "standins" / "jwt_service.py"
JWT_SECRET = "acme-dev-jwt-secret-for-tests-only-0123456789"
PEPPER = "pepper-for-the-auth-tests"
ISSUER = "acme-jwt-service"
AUDIENCE = "fd2"
SERVICE_KEY = "svc-api-key-acme"
STATIC_CLAIMS = {
    "project": "acme",
    "environment": "development",
    "models": ["gpt-4o-mini", "text-embedding-3-small", "standin-echo"],
    "rate_limit": 1000,
}
KEYS = {
    "all": "fd2_all-modules-key-000000000000000000000",
    "keyed-only": "fd2_keyed-only-key-0000000000000000000000",
    "staging-only": "fd2_staging-only-key-00000000000000000000",
    "limited": "fd2_limited-key-00000000000000000000000000",
    "metered": "fd2_metered-key-00000000000000000000000000",
    "other": "fd2_other-project-key-0000000000000000000",
}

# The suite-wide leak check looks for these in every fd2 log line and answer (see leaks.py).
for _secret in (JWT_SECRET, PEPPER, SERVICE_KEY, *KEYS.values()):
    LEAKS.add_secret(_secret)


def key_hash(key: str) -> str:
    return hmac.new(PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()


@dataclass
class AuthGateway:
    fd2: Service
    jwt_service: Service
    rsa_private: rsa.RSAPrivateKey
    rsa_public_pem: bytes

    def token(self, **changes: Any) -> str:
        """An HS256 token as the JWT service would issue, with `changes` applied (None drops)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": f"jti-{now}",
            "type": "access",
            "fresh": True,
            "iss": ISSUER,
            "aud": AUDIENCE,
            **STATIC_CLAIMS,
        }
        claims.update(changes)
        return jwt.encode(
            {k: v for k, v in claims.items() if v is not None}, JWT_SECRET, algorithm="HS256"
        )


def _inference(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "module_type": "inference_endpoint",
        "name": name,
        "config": {
            "model_name": "gpt-4o-mini",
            "endpoint_url": "${environments.${environment}.urls.llm_base_url}/chat/completions",
            "api_key": "${environments.common.secrets.upstream_api_key}",
        },
        **extra,
    }


def acme_with_auth(upstream: str, jwt_url: str, public_key_file: Path) -> dict[str, Any]:
    text = (EXAMPLE_MANIFESTS / "acme.json").read_text().replace(EXAMPLE_UPSTREAM, upstream)
    raw = json.loads(text)
    raw["environments"]["development"]["urls"]["jwt_service_url"] = jwt_url
    for module in raw["modules"]:
        if module["name"] == "auth":
            module["config"].update({"issuer": ISSUER, "audience": AUDIENCE})
        if module["name"] == "embed":
            module["auth"] = {"mode": "either"}
    raw["modules"] += [
        _inference("keyed", auth={"mode": "api_key"}),
        _inference("metered", auth={"mode": "api_key"}, limits={"requests_per_minute": 4}),
        _inference("tokened", auth={"mode": "api_key"}, limits={"tokens_per_minute": 600}),
        _inference("claimed", dependencies=["auth"]),
        {
            "module_type": "jwt_config",
            "name": "rs-auth",
            "config": {
                "algorithm": "RS256",
                "public_key": f"file:{public_key_file}",
                "service_url": jwt_url,
            },
        },
        _inference("rs-chat", dependencies=["rs-auth"]),
    ]
    raw["api_keys"] = [
        {"id": "all", "hash": key_hash(KEYS["all"])},
        {
            "id": "keyed-only",
            "hash": key_hash(KEYS["keyed-only"]),
            "modules": ["keyed"],
            "models": ["gpt-4o-mini"],
        },
        {"id": "staging-only", "hash": key_hash(KEYS["staging-only"]), "environments": ["stg"]},
        {"id": "limited", "hash": key_hash(KEYS["limited"]), "limits": {"requests_per_minute": 3}},
        {"id": "metered", "hash": key_hash(KEYS["metered"])},
    ]
    return raw


def other_project(upstream: str) -> dict[str, Any]:
    return {
        "project_id": "other",
        "environment": "development",
        "environments": {
            "common": {"secrets": {"upstream_api_key": "env:ACME_UPSTREAM_API_KEY"}},
            "development": {"urls": {"llm_base_url": f"http://{upstream}/v1"}},
        },
        "modules": [_inference("chat", auth={"mode": "api_key"})],
        "api_keys": [{"id": "other", "hash": key_hash(KEYS["other"])}],
    }


def start_jwt_service(directory: Path, logs: Path) -> Service:
    config = directory / "jwt-service.json"
    config.write_text(
        json.dumps(
            {
                "secret": JWT_SECRET,
                "users": {"alice": {"password": "wonderland", "name": "Alice", "roles": ["dev"]}},
                "api_keys": {
                    SERVICE_KEY: {
                        "id": "svc",
                        "claims": {"static": {**STATIC_CLAIMS, "iss": ISSUER, "aud": AUDIENCE}},
                    }
                },
            }
        )
    )
    port = free_port()
    argv = [sys.executable, str(JWT_SCRIPT), "--port", str(port), "--config", str(config)]
    return start_service("jwt-service", argv, port=port, ready_path="/health", log_dir=logs)


def start_auth_fd2(
    manifests: Path, logs: Path, *extra: str, name: str = "fd2-auth", workers: int = 1
) -> Service:
    port = free_port()
    env = fd2_env()
    env["AUTH_TEST_PEPPER"] = PEPPER
    argv = fd2_argv(
        "serve",
        "--port",
        str(port),
        "--manifests",
        str(manifests),
        "--workers",
        str(workers),
        "--api-key-pepper-ref",
        "env:AUTH_TEST_PEPPER",
        *extra,
    )
    return start_service(name, argv, port=port, ready_path="/healthz", log_dir=logs, env=env)


@pytest.fixture(scope="module")
def auth_gateway(
    tmp_path_factory: pytest.TempPathFactory, standin: Service
) -> Iterator[AuthGateway]:
    directory = tmp_path_factory.mktemp("auth")
    logs = directory / "logs"
    logs.mkdir()
    manifests = directory / "manifests"
    manifests.mkdir()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    public_file = directory / "rs-auth.pub.pem"
    public_file.write_bytes(pem)
    jwt_service = start_jwt_service(directory, logs)
    try:
        acme = acme_with_auth(standin.address, jwt_service.url, public_file)
        (manifests / "acme.json").write_text(json.dumps(acme))
        (manifests / "other.json").write_text(json.dumps(other_project(standin.address)))
        fd2 = start_auth_fd2(manifests, logs)
        try:
            yield AuthGateway(fd2, jwt_service, private, pem)
        finally:
            fd2.stop()
    finally:
        jwt_service.stop()
