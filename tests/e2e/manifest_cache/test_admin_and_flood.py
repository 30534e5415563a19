"""Operator endpoints (/admin, /readyz, /healthz, /metrics) and a flood of random project names."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from fd2.control.sources.control_tower_client import PROBE_PROJECT

from ..support import assert_openai_error, wait_until
from .conftest import MakeGateway
from .ct_support import ADMIN_TOKEN, CT_SECRET, PROMPT, Tower, set_prompt


def test_an_admin_push_refetches_at_once(tower: Tower, make_gateway: MakeGateway) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "300")
    assert gateway.prompt() == PROMPT
    manifest = tower.read("acme")
    set_prompt(manifest, "pushed")
    tower.write("acme", manifest)
    assert gateway.prompt() == PROMPT  # a 300 s TTL: nothing would look before then
    response = gateway.admin("POST", "/admin/manifests/acme/refresh")
    assert response.status_code == 200, response.text
    assert response.json()["changed"] is True
    assert gateway.prompt() == "pushed"
    again = gateway.admin("POST", "/admin/manifests/acme/refresh")
    assert again.status_code == 200 and again.json()["changed"] is False


def test_admin_needs_the_token(tower: Tower, make_gateway: MakeGateway) -> None:
    gateway = make_gateway(tower.url)
    for token in (None, "wrong", ADMIN_TOKEN + "x"):
        for method, path in (("GET", "/admin/routes"), ("POST", "/admin/manifests/acme/refresh")):
            response = gateway.admin(method, path, token=token)
            assert response.status_code == 401, (token, path)
            assert_openai_error(response.content)
    assert gateway.admin("GET", "/admin/manifests/acme/refresh").status_code == 405
    missing = gateway.admin("POST", "/admin/manifests/nosuch/refresh")
    assert missing.status_code == 404
    assert "nosuch" in assert_openai_error(missing.content)["message"]
    assert tower.calls().get("acme") is None  # refused requests never reached the Control Tower


def test_admin_is_absent_without_a_token(tower: Tower, make_gateway: MakeGateway) -> None:
    gateway = make_gateway(tower.url, admin=False)
    response = gateway.admin("GET", "/admin/routes")
    assert response.status_code == 404
    assert "not enabled" in assert_openai_error(response.content)["message"]


def test_admin_routes_lists_what_serves_and_never_a_secret(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url)
    assert gateway.prompt() == PROMPT
    response = gateway.admin("GET", "/admin/routes")
    view = response.json()
    (acme,) = view["projects"]
    assert acme["project"] == "acme" and acme["source"] == "control-tower"
    assert acme["manifest"]["version"] == str(tower.read("acme")["version"])
    assert len(acme["manifest"]["digest"]) == 64
    assert acme["age_s"] >= 0 and acme["stale"] is False and acme["last_error"] is None
    chat = next(module for module in acme["modules"] if module["module"] == "chat")
    assert {env["environment"] for env in chat["environments"]} >= {"development"}
    assert view["sources"]["control_tower"]["reachable"] is True
    assert view["sources"]["redis"] is None
    for secret in (CT_SECRET, ADMIN_TOKEN, "test-acme-key"):
        assert secret not in response.text


def test_readyz_follows_the_control_tower_and_healthz_the_process(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "1")

    def readyz() -> int:
        return httpx.get(f"{gateway.url}/readyz", timeout=10).status_code

    wait_until(lambda: readyz() == 200, timeout=10, interval=0.2)
    tower.service.stop()
    # Nothing cached and the Control Tower gone: nothing can be served.
    wait_until(lambda: readyz() == 503, timeout=15, interval=0.2)
    assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200


def test_readyz_stays_ready_while_cached_projects_serve(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "1")
    assert gateway.prompt() == PROMPT
    tower.service.stop()
    wait_until(lambda: (gateway.project("acme") or {}).get("stale"), timeout=15, interval=0.2)
    assert httpx.get(f"{gateway.url}/readyz", timeout=10).status_code == 200


def test_a_flood_of_random_project_names_cannot_flood_the_control_tower(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    rate = 5.0
    gateway = make_gateway(tower.url, "--unknown-project-rate", str(rate))
    assert gateway.prompt() == PROMPT
    tower.reset()
    statuses: list[int] = []
    lock = threading.Lock()
    counter = itertools.count()
    deadline = time.monotonic() + 4.0

    def flood(_: int) -> None:
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            while time.monotonic() < deadline:
                next(counter)
                name = f"rnd-{uuid.uuid4().hex[:12]}"
                code = http.get(f"/{name}/chat/v1/models").status_code
                with lock:
                    statuses.append(code)

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(flood, range(8)))
        known = gateway.client().models.list()  # a cached project is untouched by the flood
    elapsed = time.monotonic() - began
    calls = {name: n for name, n in tower.calls().items() if name != PROBE_PROJECT}
    flood_calls = sum(calls.values())
    print(
        f"flood: {len(statuses)} requests in {elapsed:.1f}s, {flood_calls} Control Tower calls "
        f"({flood_calls / elapsed:.1f}/s)"
    )
    assert known.data
    assert len(statuses) > 10 * (rate * elapsed + rate)  # a real flood, far above the cap
    assert set(statuses) <= {404, 503}
    # The cap: a burst of `rate`, then `rate` per second.
    assert flood_calls <= rate + rate * elapsed + 1
    assert statuses.count(503) >= len(statuses) - flood_calls
