"""API key records stored in Redis (`fd2:apikey:<hash>`): a stored key works on its project,
within its scope; another project's key is no credential here."""

from __future__ import annotations

import json

import httpx
import pytest
import redis

from ..conftest import Service
from ..redis_server import running_redis
from .conftest import KEYS, PEPPER, key_hash, start_auth_fd2

STORED = "fd2_stored-in-redis-key-00000000000000000"
FOREIGN = "fd2_stored-for-billing-key-0000000000000"
NARROW = "fd2_stored-for-embed-only-00000000000000"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, standin: Service):
    directory = tmp_path_factory.mktemp("redis-keys")
    manifests = directory / "manifests"
    manifests.mkdir()
    module = {
        "module_type": "inference_endpoint",
        "name": "chat",
        "auth": {"mode": "api_key"},
        "config": {"endpoint_url": f"http://{standin.address}/v1/chat/completions"},
    }
    manifest = {
        "project_id": "acme",
        "environment": "development",
        "environments": {"development": {}},
        "modules": [module],
    }
    (manifests / "acme.json").write_text(json.dumps(manifest))
    with running_redis(directory) as url:
        client = redis.Redis.from_url(url)
        records = {
            STORED: {"id": "stored", "project": "acme"},
            FOREIGN: {"id": "foreign", "project": "billing"},
            NARROW: {"id": "narrow", "project": "acme", "modules": ["embed"]},
        }
        for key, record in records.items():
            client.set(f"fd2:apikey:{key_hash(key)}", json.dumps({**record, "hash": key_hash(key)}))
        client.close()
        fd2 = start_auth_fd2(manifests, directory, "--redis-url", url, name="fd2-redis-keys")
        try:
            yield fd2
        finally:
            fd2.stop()


@pytest.mark.parametrize(
    ("key", "status"),
    [(STORED, 200), (FOREIGN, 401), (NARROW, 403), (KEYS["all"], 401), (STORED + "x", 401)],
)
def test_keys_stored_in_redis(gateway: Service, key: str, status: int):
    response = httpx.post(
        f"{gateway.url}/acme/chat/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": key},
        timeout=20,
    )
    assert response.status_code == status, response.text
    assert key.encode() not in response.content and PEPPER.encode() not in response.content
