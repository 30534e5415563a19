"""The manifest cache against the Control Tower stand-in: revalidation, ETags, stale-if-error,
bounded staleness, invalid answers. Each test runs its own stand-in and fd2 (under Granian)."""

from __future__ import annotations

import time

import httpx
import pytest

from ..support import assert_openai_error, wait_until
from .conftest import MakeGateway
from .ct_support import PROMPT, Gateway, Tower, set_prompt


def _rebuilds(gateway: Gateway) -> int:
    return int(gateway.routes()["rebuilds"]["count"])


def test_timestamps_filled_in_by_the_control_tower_never_cause_a_rebuild(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "1")
    assert gateway.prompt() == PROMPT
    assert _rebuilds(gateway) == 1
    # Each answer carries fresh created_at/updated_at; the content is the same.
    wait_until(lambda: tower.calls()["acme"] >= 5, timeout=15, interval=0.2)
    assert _rebuilds(gateway) == 1
    unchanged = gateway.metric("fd2_control_tower_fetches_total", 'outcome="unchanged"')
    assert unchanged is not None and unchanged >= 3


def test_etags_are_revalidated_with_if_none_match(
    etag_tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(etag_tower.url, "--manifest-ttl", "1")
    assert gateway.prompt() == PROMPT
    wait_until(lambda: etag_tower.stats()["not_modified"] >= 3, timeout=15, interval=0.2)
    assert _rebuilds(gateway) == 1
    project = gateway.project("acme")
    assert project is not None and project["etag"] is True and project["staleness_s"] == 0
    # A real change (new ETag) still gets through.
    manifest = etag_tower.read("acme")
    set_prompt(manifest, "v2 behind an ETag")
    etag_tower.write("acme", manifest)
    wait_until(lambda: gateway.prompt() == "v2 behind an ETag", timeout=10, interval=0.2)
    assert _rebuilds(gateway) == 2


def test_steady_state_never_waits_on_a_slow_control_tower(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "1")
    client = gateway.client(timeout=2.0)
    client.models.list()
    tower.behave(delay_s=3.0)
    before = tower.calls()["acme"]
    # 3 s of requests, each allowed 2 s: any request waiting on the 3 s Control Tower would fail.
    for _ in range(30):
        client.models.list()
        httpx.get(f"{gateway.url}/healthz", timeout=2.0)
        time.sleep(0.1)
    assert tower.calls()["acme"] > before  # revalidation did run meanwhile, in the background


@pytest.mark.parametrize("failure", ["error", "garbage", "slow", "stopped"])
def test_cached_projects_keep_serving_while_the_control_tower_fails(
    tower: Tower, make_gateway: MakeGateway, failure: str
) -> None:
    gateway = make_gateway(
        tower.url,
        "--manifest-ttl",
        "1",
        "--manifest-max-stale",
        "120",
        "--control-tower-read-timeout",
        "0.5",
        "--control-tower-retries",
        "1",
    )
    assert gateway.prompt() == PROMPT
    if failure == "stopped":
        tower.service.stop()
    else:
        tower.behave(
            mode="normal" if failure == "slow" else failure, delay_s=5 if failure == "slow" else 0
        )

    def stale() -> dict | None:
        project = gateway.project("acme")
        return project if project and project["stale"] and project["last_error"] else None

    shown = wait_until(stale, timeout=15, interval=0.2)
    assert shown["staleness_s"] > 0
    assert "Control Tower" in shown["last_error"]
    assert gateway.prompt() == PROMPT
    staleness = gateway.metric("fd2_manifest_staleness_seconds", 'project="acme"')
    assert staleness is not None and staleness > 0
    errors = gateway.metric("fd2_control_tower_fetches_total", 'outcome="error"')
    assert errors is not None and errors >= 1
    # A project never fetched cannot be served without the Control Tower: 503, clearly.
    response = httpx.get(f"{gateway.url}/burst/chat/v1/models", timeout=15)
    assert response.status_code == 503
    assert "Control Tower cannot be reached" in assert_openai_error(response.content)["message"]


def test_staleness_is_bounded_by_manifest_max_stale(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(
        tower.url,
        "--manifest-ttl",
        "1",
        "--manifest-max-stale",
        "1",
        "--manifest-negative-ttl",
        "1",
        "--control-tower-retries",
        "0",
    )
    assert gateway.prompt() == PROMPT
    tower.behave(mode="error")

    def refused() -> dict | None:
        response = httpx.get(f"{gateway.url}/acme/chat/v1/models", timeout=10)
        return assert_openai_error(response.content) if response.status_code == 503 else None

    error = wait_until(refused, timeout=15, interval=0.2)
    assert "acme" in error["message"]
    tower.behave(mode="normal")

    def served_again() -> bool:
        return httpx.get(f"{gateway.url}/acme/chat/v1/models", timeout=10).status_code == 200

    # Refused for at most the negative-cache time, then fetched and served again.
    wait_until(served_again, timeout=10, interval=0.3)
    assert gateway.prompt() == PROMPT


def test_an_invalid_answer_keeps_the_good_version_and_names_the_field(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "1")
    assert gateway.prompt() == PROMPT
    good = tower.read("acme")
    broken = tower.read("acme")
    broken["modules"][0]["name"] = 42
    tower.behave(mode="stored")  # the real Control Tower would refuse to serve it (404)
    tower.write("acme", broken)

    def reported() -> str | None:
        project = gateway.project("acme")
        return project["last_error"] if project else None

    report = wait_until(reported, timeout=10, interval=0.2)
    assert "$.modules[0].name" in report
    assert gateway.prompt() == PROMPT
    rejected = gateway.metric("fd2_control_tower_fetches_total", 'outcome="rejected"')
    assert rejected is not None and rejected >= 1
    set_prompt(good, "fixed")
    tower.write("acme", good)
    wait_until(lambda: gateway.prompt() == "fixed", timeout=10, interval=0.2)
    project = gateway.project("acme")
    assert project is not None and project["last_error"] is None


def test_an_unreachable_control_tower_is_logged_once_per_interval_not_per_project(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(
        tower.url,
        "--manifest-ttl",
        "1",
        "--manifest-max-stale",
        "120",
        "--control-tower-retries",
        "0",
    )
    projects = ("acme", "second", "third")
    for project in projects[1:]:
        tower.write(project, {**tower.read("acme"), "project_id": project})
    for project in projects:
        assert httpx.get(f"{gateway.url}/{project}/chat/v1/models", timeout=10).status_code == 200
    tower.service.stop()

    def all_stale() -> bool:
        shown = [gateway.project(project) for project in projects]
        return all(p is not None and p["stale"] and p["last_error"] for p in shown)

    wait_until(all_stale, timeout=15, interval=0.2)
    time.sleep(3)  # several refresh rounds for three cached projects (TTL 1 s)
    lines = [line for line in gateway.service.output().splitlines() if "serving the cached" in line]
    assert len(lines) == 1, lines
