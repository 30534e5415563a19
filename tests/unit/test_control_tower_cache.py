"""ControlTowerCache against a real HTTP server on loopback (aiohttp's test server)."""

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fd2.control.manifests.models import ProjectManifest
from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.secrets import Secret, SecretResolver
from fd2.control.sources.cache_state import SharedCopy
from fd2.control.sources.control_tower_cache import ControlTowerCache, manifest_digest
from fd2.control.sources.control_tower_client import ControlTowerClient
from fd2.control.sources.lookup_limit import LookupLimiter
from fd2.module import Timeouts
from fd2.serving.errors import NotFound, ServiceUnavailable

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
        yield (
            ControlTowerCache(client, builder, ttl_s=60, negative_ttl_s=30, replica_id="replica-a"),
            builder,
        )
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


async def test_the_background_tick_revalidates_without_rebuilding(tower, cache):
    ctc, builder = cache
    await ctc.ensure("acme")
    table = builder.table
    ctc.states["acme"].next_refresh = 0  # due now
    await ctc.tick()
    assert tower.calls == ["acme", "acme"]
    assert builder.table is table  # same content: no recompilation
    assert ctc.stats.fetches == {"changed": 1, "unchanged": 1}


async def test_a_copy_stale_past_max_stale_stops_serving(tower, cache):
    ctc, builder = cache
    await ctc.ensure("acme")
    tower.status, tower.body = 500, b"down"
    state = ctc.states["acme"]
    state.fetched_at -= ctc.ttl + ctc.max_stale + 1  # as if the Control Tower failed that long
    await ctc.tick()
    assert "acme" not in builder.table.projects
    with pytest.raises(ServiceUnavailable, match="too old"):
        await ctc.ensure("acme")


async def test_a_failed_refresh_keeps_serving_and_records_the_error(tower, cache):
    ctc, builder = cache
    await ctc.ensure("acme")
    tower.status, tower.body = 503, b"busy"
    assert await ctc.refresh_now("acme") is False
    assert "acme" in builder.table.projects
    assert ctc.states["acme"].last_error == "Control Tower: HTTP 503"
    assert ctc.reachable is False


async def test_lookups_of_uncached_projects_are_rate_limited(tower, cache):
    ctc, _ = cache
    ctc.limiter = LookupLimiter(rate_per_s=0.001, burst=2)
    for name in ("one", "two"):
        with pytest.raises(NotFound):
            await ctc.ensure(name)
    with pytest.raises(ServiceUnavailable) as refused:
        await ctc.ensure("three")
    assert refused.value.code == "lookup_throttled"
    assert tower.calls == ["one", "two"]


async def test_notices_from_other_replicas_apply_only_to_projects_served_here(tower, cache):
    ctc, builder = cache
    await ctc.ensure("acme")
    changed = json.loads(json.dumps(ACME))
    changed["modules"] = [m for m in changed["modules"] if m["name"] != "embed"]

    def notice(project, sender):
        return SharedCopy(
            project=project,
            digest="d2",
            manifest=msgspec.convert(changed, ProjectManifest),
            fetched_at=time.time(),
            sender=sender,
        )

    await ctc.accept_notice(notice("acme", ctc.replica_id))  # our own: ignored
    assert ("acme", "embed") in builder.table.groups
    await ctc.accept_notice(notice("other", "replica-b"))  # never served here: ignored
    assert "other" not in builder.table.projects
    await ctc.accept_notice(notice("acme", "replica-b"))
    assert ("acme", "embed") not in builder.table.groups
    assert ctc.states["acme"].source == "redis"
    assert tower.calls == ["acme"]


async def test_the_cache_answers_as_a_manifest_source(tower, cache):
    ctc, builder = cache
    assert not ctc.usable()  # never asked yet
    with pytest.raises(NotFound):
        await ctc.lookup("nosuch")
    await ctc.lookup("acme")
    assert ctc.usable() and ctc.serves("acme") and not ctc.serves("nosuch")
    answer = await ctc.refresh("acme")
    assert answer is not None and answer["source"] == "control-tower"
    assert answer["changed"] is False and answer["digest"] == builder.digest("acme")
    assert ctc.describe()["reachable"] is True and ctc.describe()["negative_ttl_s"] == 30
    assert ctc.describe_project("acme")["stale"] is False
    assert [entry["project"] for entry in ctc.failing(builder.table.projects)] == ["nosuch"]
    names = {family.name for family in ctc.metric_families()}
    assert "fd2_control_tower_fetches" in names and "fd2_manifest_shared_copies_used" in names
    tower.status, tower.body = 503, b"down"
    ctc.reachable = False
    assert ctc.usable()  # what it serves is within its allowed staleness


async def test_an_answer_that_is_not_a_manifest_is_rejected_once_decoded(tower, cache):
    ctc, _ = cache
    tower.body = json.dumps({"project_id": "acme", "modules": [{"name": "x"}]}).encode()
    with pytest.raises(ServiceUnavailable, match="invalid"):
        await ctc.ensure("acme")
    assert ctc.stats.fetches == {"rejected": 1}
    assert ctc.reachable is True  # it answered; the answer was wrong
    assert "module_type" in (ctc.states["acme"].last_error or "")


def test_the_digest_ignores_key_order_and_the_timestamps_the_control_tower_rewrites():
    first = msgspec.convert({**ACME, "updated_at": "2024-01-01T00:00:00"}, ProjectManifest)
    reordered = dict(reversed(list(ACME.items())))
    second = msgspec.convert({**reordered, "updated_at": "2025-06-01T00:00:00"}, ProjectManifest)
    assert manifest_digest(first) == manifest_digest(second)
    changed = msgspec.convert({**ACME, "version": "9.9.9"}, ProjectManifest)
    assert manifest_digest(changed) != manifest_digest(first)


def test_a_shared_copy_travels_as_json_and_comes_back_typed_and_validated():
    manifest = msgspec.convert(ACME, ProjectManifest)
    copy = SharedCopy(project="acme", digest="d", manifest=manifest, fetched_at=1.0, sender="a")
    decoder = msgspec.json.Decoder(SharedCopy)
    assert decoder.decode(msgspec.json.encode(copy)) == copy
    broken = msgspec.json.encode(copy).replace(b'"project_id":"acme"', b'"project_id":"no way"')
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(broken)
