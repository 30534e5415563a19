"""ControlTowerCache against a real HTTP server on loopback (aiohttp's test server)."""

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fd2.errors import NotFound, ServiceUnavailable
from fd2.module import Timeouts
from fd2.registry import ModuleRegistry
from fd2.route_builder import RouteBuilder
from fd2.secrets import Secret, SecretResolver
from fd2.sources.control_tower import ControlTowerClient
from fd2.sources.manifest_cache import ControlTowerCache

ACME = json.loads((Path(__file__).parents[2] / "examples" / "manifests" / "acme.json").read_text())


class Tower:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.secrets: list[str | None] = []
        self.delay = 0.0
        self.status = 200
        self.body: bytes | None = None
        app = web.Application()
        app.router.add_get("/manifests/{project}", self.manifest)
        self.server = TestServer(app, host="127.0.0.1")

    async def manifest(self, request: web.Request) -> web.Response:
        project = request.match_info["project"]
        self.calls.append(project)
        self.secrets.append(request.headers.get("x-dspai-client-secret"))
        await asyncio.sleep(self.delay)
        if self.body is not None:
            return web.Response(status=self.status, body=self.body)
        if project != "acme":
            return web.json_response({"detail": f"Manifest not found: {project}"}, status=404)
        return web.json_response(ACME, status=self.status)


@pytest.fixture
async def tower():
    tower = Tower()
    await tower.server.start_server()
    yield tower
    await tower.server.close()


@pytest.fixture
async def cache(tower):
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(classes={"unused": object}),
            secrets=SecretResolver(environ={}),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ={},
        )
        client = ControlTowerClient(
            str(tower.server.make_url("/")),
            secret=Secret("tower-secret-1"),
            read_timeout_s=2,
            retries=0,
        )
        yield ControlTowerCache(client, builder, ttl_s=60, negative_ttl_s=30), builder
        await client.aclose()


async def test_fetch_compiles_the_project_and_sends_the_client_secret(tower, cache):
    ctc, builder = cache
    await ctc.ensure("acme")
    assert ("acme", "chat") in builder.table.groups
    assert tower.secrets == ["tower-secret-1"]


async def test_concurrent_misses_make_one_call_even_if_the_first_requester_leaves(tower, cache):
    ctc, builder = cache
    tower.delay = 0.2
    first = asyncio.create_task(ctc.ensure("acme"))
    others = [asyncio.create_task(ctc.ensure("acme")) for _ in range(20)]
    await asyncio.sleep(0.05)
    first.cancel()
    await asyncio.gather(*others)
    assert tower.calls == ["acme"]
    assert "acme" in builder.table.projects
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_unknown_projects_are_remembered(tower, cache):
    ctc, _ = cache
    for _ in range(5):
        with pytest.raises(NotFound):
            await ctc.ensure("nosuch")
    assert tower.calls == ["nosuch"]


@pytest.mark.parametrize(("status", "body"), [(500, b"oops"), (200, b"<html>"), (200, b"[1]")])
async def test_unusable_answers_are_503_when_nothing_is_cached(tower, cache, status, body):
    ctc, _ = cache
    tower.status, tower.body = status, body
    with pytest.raises(ServiceUnavailable):
        await ctc.ensure("acme")


async def test_an_invalid_manifest_never_replaces_a_good_one(tower, cache):
    ctc, builder = cache
    await ctc.ensure("acme")
    table = builder.table
    tower.body = json.dumps({"project_id": "acme", "modules": "not a list"}).encode()
    assert await ctc.refresh_now("acme") is False
    assert builder.table is table
    assert "modules" in (ctc.states["acme"].last_error or "")
