"""fd2 with the Control Tower as its manifest source: a real stand-in process over HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from ..support import assert_openai_error, wait_until
from .conftest import MakeGateway
from .ct_support import PROMPT, Tower, set_prompt


def test_project_from_the_control_tower_serves_the_sdk(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    # Through the Control Tower's models: the upstream key survives in metadata.fd2.
    gateway = make_gateway(tower.url)
    reply = gateway.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert '"authorization":"Bearer test-acme-key"' in (reply.choices[0].message.content or "")
    assert gateway.prompt() == PROMPT
    assert tower.calls().get("acme") == 1


def test_a_burst_for_an_uncached_project_makes_one_control_tower_call(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url)
    tower.behave(delay_s=0.5)  # every request of the burst arrives while the fetch is running

    def one(_: int) -> int:
        return httpx.get(f"{gateway.url}/burst/chat/v1/models", timeout=20).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(32)))
    assert statuses == [200] * 32
    assert tower.calls().get("burst") == 1


def test_unknown_projects_are_404_and_negatively_cached(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-negative-ttl", "30")
    for _ in range(5):
        response = httpx.get(f"{gateway.url}/nosuch/chat/v1/models", timeout=10)
        assert response.status_code == 404
        assert "nosuch" in assert_openai_error(response.content)["message"]
    assert tower.calls().get("nosuch") == 1


def test_an_unknown_project_is_asked_again_after_the_negative_ttl(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-negative-ttl", "1")
    assert httpx.get(f"{gateway.url}/later/chat/v1/models", timeout=10).status_code == 404
    tower.write("later", tower.read("acme") | {"project_id": "later"})
    assert httpx.get(f"{gateway.url}/later/chat/v1/models", timeout=10).status_code == 404

    def served() -> bool:
        return httpx.get(f"{gateway.url}/later/chat/v1/models", timeout=10).status_code == 200

    wait_until(served, timeout=10, interval=0.2)
    assert 2 <= tower.calls()["later"] <= 4  # once per negative-TTL window, not per request


def test_a_change_at_the_control_tower_reaches_requests(
    tower: Tower, make_gateway: MakeGateway
) -> None:
    gateway = make_gateway(tower.url, "--manifest-ttl", "1")
    assert gateway.prompt() == PROMPT
    manifest = tower.read("acme")
    set_prompt(manifest, "Prompt from the Control Tower, v2.")
    tower.write("acme", manifest)

    def prompt() -> str | None:
        text = gateway.prompt()
        return text if text != PROMPT else None

    assert wait_until(prompt, timeout=10, interval=0.2) == "Prompt from the Control Tower, v2."


def test_a_wrong_client_secret_is_a_clear_503(tower: Tower, make_gateway: MakeGateway) -> None:
    gateway = make_gateway(tower.url, secret="wrong-secret")
    response = httpx.get(f"{gateway.url}/acme/chat/v1/models", timeout=10)
    assert response.status_code == 503
    assert "Control Tower" in assert_openai_error(response.content)["message"]
    assert b"wrong-secret" not in response.content
    assert "wrong-secret" not in gateway.service.output()
    # 401 is final: asked once, not retried.
    assert tower.calls().get("acme") == 1
