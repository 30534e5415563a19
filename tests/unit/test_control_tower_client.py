"""ControlTowerClient against a real HTTP server on loopback: retries, ETags, what is final."""

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fd2.control.manifests.decode import ManifestError
from fd2.control.secrets import Secret
from fd2.control.sources.control_tower_client import ControlTowerClient, ControlTowerUnavailable
from fd2.control.sources.lookup_limit import LookupLimiter

MANIFEST = {"project_id": "acme", "modules": []}


class Script:
    """Answers the statuses of `plan` in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.plan: list[int] = [200]
        self.body: bytes | None = None
        self.seen: list[dict[str, str | None]] = []
        app = web.Application()
        app.router.add_get("/manifests/{project}", self.manifest)
        self.server = TestServer(app, host="127.0.0.1")

    async def manifest(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "secret": request.headers.get("x-dspai-client-secret"),
                "if-none-match": request.headers.get("if-none-match"),
            }
        )
        status = self.plan[min(len(self.seen) - 1, len(self.plan) - 1)]
        if self.body is not None:
            return web.Response(status=200, body=self.body)
        if status == 200:
            return web.json_response(MANIFEST, headers={"etag": '"v1"'})
        if status == 304:
            return web.Response(status=304)
        return web.json_response({"detail": "no"}, status=status)


@pytest.fixture
async def script():
    script = Script()
    await script.server.start_server()
    yield script
    await script.server.close()


@pytest.fixture
async def client(script):
    client = ControlTowerClient(
        str(script.server.make_url("/")), secret=Secret("ct-secret-abc"), retries=2
    )
    yield client
    await client.aclose()


async def test_a_manifest_comes_with_its_etag_and_the_client_secret(script, client):
    answer = await client.fetch("acme")
    assert answer.manifest is not None and answer.etag == '"v1"'
    assert answer.manifest.project_id == "acme" and answer.manifest.modules == []
    assert script.seen == [{"secret": "ct-secret-abc", "if-none-match": None}]


async def test_if_none_match_is_sent_and_304_means_unchanged(script, client):
    script.plan = [304]
    answer = await client.fetch("acme", etag='"v1"')
    assert answer.not_modified and answer.manifest is None
    assert script.seen[0]["if-none-match"] == '"v1"'


@pytest.mark.parametrize("transient", [500, 502, 503, 429])
async def test_transient_failures_are_retried(script, client, transient):
    script.plan = [transient, transient, 200]
    answer = await client.fetch("acme")
    assert answer.manifest is not None and answer.manifest.project_id == "acme"
    assert len(script.seen) == 3


async def test_retries_are_bounded(script, client):
    script.plan = [500]
    with pytest.raises(ControlTowerUnavailable, match="HTTP 500"):
        await client.fetch("acme")
    assert len(script.seen) == 3  # one attempt and two retries


@pytest.mark.parametrize("final", [400, 401, 403])
async def test_client_errors_are_not_retried(script, client, final):
    script.plan = [final, 200]
    with pytest.raises(ControlTowerUnavailable, match=f"HTTP {final}"):
        await client.fetch("acme")
    assert len(script.seen) == 1


async def test_404_is_an_answer_not_an_error(script, client):
    script.plan = [404]
    answer = await client.fetch("nosuch")
    assert answer.manifest is None and not answer.not_modified
    assert len(script.seen) == 1


async def test_an_unreachable_control_tower_is_retried_then_reported():
    client = ControlTowerClient("http://127.0.0.1:9", secret=None, retries=1)
    try:
        with pytest.raises(ControlTowerUnavailable, match="ConnectError"):
            await client.fetch("acme")
        assert await client.probe() is False
    finally:
        await client.aclose()


async def test_probe_takes_404_as_reachable(script, client):
    script.plan = [404]
    assert await client.probe() is True
    script.plan = [401]
    script.seen.clear()
    assert await client.probe() is False


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>login</html>", ControlTowerUnavailable),  # not JSON: no answer at all
        (b'{"project_id": "acme", "modules": "none"}', ManifestError),  # JSON, not a manifest
        (b"[1]", ManifestError),
    ],
)
async def test_an_answer_is_decoded_and_validated_in_one_pass(script, client, body, problem):
    script.body = body
    with pytest.raises(problem) as raised:
        await client.fetch("acme")
    if problem is ManifestError:
        assert raised.value.message.startswith("control-tower:acme: ")
    assert len(script.seen) == 1  # an invalid answer is final: not retried


def test_the_lookup_limiter_spends_its_burst_then_refuses():
    limiter = LookupLimiter(rate_per_s=0.001, burst=3)
    granted = [limiter.try_acquire() for _ in range(10)]
    assert granted == [True] * 3 + [False] * 7
    assert limiter.refused == 7
