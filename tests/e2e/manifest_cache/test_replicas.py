"""Three fd2 replicas sharing manifests through a real redis-server; Redis going away."""

from __future__ import annotations

import time

import httpx

from ..redis_server import RedisServer
from ..support import wait_until
from .conftest import MakeGateway
from .ct_support import PROMPT, Gateway, Tower, set_prompt


def _digest(gateway: Gateway) -> str | None:
    project = gateway.project("acme")
    return project["manifest"]["digest"] if project else None


def test_a_push_at_one_replica_reaches_every_replica_within_a_second(
    tower: Tower, make_gateway: MakeGateway, redis_server: RedisServer
) -> None:
    # A long TTL: nothing but the push and the Redis notice can bring the change.
    flags = ("--redis-url", redis_server.url, "--manifest-ttl", "300")
    replicas = [make_gateway(tower.url, *flags, name=f"fd2-replica-{i}") for i in range(3)]
    for replica in replicas:
        wait_until(
            lambda replica=replica: replica.routes()["sources"]["redis"]["connected"],
            timeout=10,
        )
        assert replica.prompt() == PROMPT
    # The first replica fetched; the others adopted its copy from Redis.
    assert tower.calls()["acme"] == 1
    old = _digest(replicas[0])
    manifest = tower.read("acme")
    set_prompt(manifest, "pushed to every replica")
    tower.write("acme", manifest)

    pushed = time.monotonic()
    response = replicas[0].admin("POST", "/admin/manifests/acme/refresh")
    assert response.status_code == 200 and response.json()["changed"] is True
    new = response.json()["digest"]
    assert new != old
    lag = {}
    for index, replica in enumerate(replicas[1:], start=1):
        wait_until(lambda replica=replica: _digest(replica) == new, timeout=5, interval=0.01)
        lag[index] = time.monotonic() - pushed
    print(f"replica lag after the push (s): {lag}")
    assert max(lag.values()) < 1.0
    for replica in replicas:
        assert replica.prompt() == "pushed to every replica"
    assert tower.calls()["acme"] == 2  # the push's fetch; the notice carried the copy


def test_a_change_noticed_by_one_replica_reaches_the_others_within_a_second(
    tower: Tower, make_gateway: MakeGateway, redis_server: RedisServer
) -> None:
    redis = ("--redis-url", redis_server.url)
    noticing = make_gateway(tower.url, *redis, "--manifest-ttl", "1", name="fd2-noticing")
    # These would not look for 300 s on their own.
    others = [
        make_gateway(tower.url, *redis, "--manifest-ttl", "300", name=f"fd2-other-{i}")
        for i in range(2)
    ]
    replicas = [noticing, *others]
    for gateway in replicas:
        wait_until(lambda g=gateway: g.routes()["sources"]["redis"]["connected"], timeout=10)
        assert gateway.prompt() == PROMPT
    old = _digest(noticing)
    manifest = tower.read("acme")
    set_prompt(manifest, "noticed")
    tower.write("acme", manifest)
    changed_at: dict[int, float] = {}
    deadline = time.monotonic() + 10
    while len(changed_at) < len(replicas) and time.monotonic() < deadline:
        for index, gateway in enumerate(replicas):
            if index not in changed_at and _digest(gateway) != old:
                changed_at[index] = time.monotonic()
    assert len(changed_at) == len(replicas), changed_at
    lag = [changed_at[index] - changed_at[0] for index in (1, 2)]
    print(f"replica lag after the noticing replica changed (s): {lag}")
    assert max(lag) < 1.0
    for gateway in replicas:
        assert gateway.prompt() == "noticed"


def test_redis_going_away_never_takes_fd2_down(
    tower: Tower, make_gateway: MakeGateway, redis_server: RedisServer
) -> None:
    gateway = make_gateway(tower.url, "--redis-url", redis_server.url)
    wait_until(lambda: gateway.routes()["sources"]["redis"]["connected"], timeout=10)
    assert gateway.prompt() == PROMPT
    redis_server.stop()
    wait_until(lambda: gateway.routes()["sources"]["redis"]["connected"] is False, timeout=10)
    for _ in range(20):
        assert gateway.prompt() == PROMPT
    # A project not cached yet is fetched from the Control Tower as without Redis.
    assert httpx.get(f"{gateway.url}/burst/chat/v1/models", timeout=10).status_code == 200
    assert gateway.service.output().count("redis unreachable") == 1  # logged once, not per request
    redis_server.start()  # same port: fd2 reconnects by itself
    wait_until(lambda: gateway.routes()["sources"]["redis"]["connected"], timeout=15)
    assert "redis is reachable again" in gateway.service.output()
