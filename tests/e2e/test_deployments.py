"""Deployments over real stand-ins: strategies, fallbacks, breakers, the retry budget, hedging.

Each stand-in's behaviour is chosen by the model a target sends (tests/standins/openai_upstream.py):
`error-500-plain`, `error-429`, `error-context`, `slow-<ms>`, `chunks-<n>`; a dead target is a
port nothing listens on, a killed stand-in a process stopped mid-test.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import Service, StandinStats, free_port, start_standin
from .routing_support import ADMIN_TOKEN, routing_manifest, start_routed_fd2, target

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service]]:
    logs = tmp_path_factory.mktemp("routing-standins")
    a = start_standin("standin-a", logs)
    b = start_standin("standin-b", logs)
    yield a, b
    a.stop()
    b.stop()


def _deployments(a: str, b: str, dead: str, mortal: str) -> dict[str, Any]:
    fast = {"read_s": 0.3}
    return {
        "both": {"targets": [target(a, "gpt-4o-mini"), target(b, "gpt-4o-mini")]},
        "flaky": {
            "strategy": "priority",
            "targets": [
                target(a, "error-500-plain", name="bad", priority=0),
                target(b, "gpt-4o-mini", name="good", priority=1),
            ],
        },
        "flaky-stream": {
            "strategy": "priority",
            "targets": [
                target(a, "error-500-plain", name="bad-s", priority=0),
                target(b, "chunks-4", name="good-s", priority=1),
            ],
        },
        "limited": {
            "targets": [target(a, "error-429", name="limited")],
            "fallbacks": ["both"],
        },
        "unreachable": {
            "strategy": "priority",
            "targets": [
                target(dead, "gpt-4o-mini", name="dead", priority=0),
                target(b, "gpt-4o-mini", name="alive", priority=1),
            ],
        },
        "hung": {
            "strategy": "priority",
            "targets": [
                target(a, "slow-3000", name="hung", priority=0, timeouts=fast),
                target(b, "gpt-4o-mini", name="quick", priority=1),
            ],
        },
        "small": {
            "targets": [target(a, "error-context", name="small")],
            "context_fallback": "large",
        },
        "large": {"targets": [target(b, "gpt-4o", name="large")]},
        "hedged": {
            "strategy": "priority",
            "hedge": {"delay_ms": 100},
            "targets": [
                target(a, "slow-800", name="slow", priority=0),
                target(b, "gpt-4o-mini", name="hedge", priority=1),
            ],
        },
        "hedged-stream": {
            "strategy": "priority",
            "hedge": {"delay_ms": 100},
            "targets": [
                target(a, "slow-800-chunks-4", name="slow-s", priority=0),
                target(b, "chunks-4", name="hedge-s", priority=1),
            ],
        },
        "mortal": {
            "strategy": "priority",
            "targets": [
                target(mortal, "slow-400", name="mortal", priority=0),
                target(b, "gpt-4o-mini", name="survivor", priority=1),
            ],
        },
        "broken": {
            "targets": [
                target(a, "error-500-plain", name="broken-a"),
                target(b, "error-500-plain", name="broken-b"),
            ],
        },
    }


@pytest.fixture(scope="module")
def mortal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A stand-in a test kills (SIGKILL) while it serves."""
    service = start_standin("standin-mortal", tmp_path_factory.mktemp("mortal"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def routed(
    pair: tuple[Service, Service], mortal: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    a, b = pair
    root = tmp_path_factory.mktemp("routing")
    manifests = root / "manifests"
    manifests.mkdir()
    dead = f"127.0.0.1:{free_port()}"
    manifest = routing_manifest(
        _deployments(a.address, b.address, dead, mortal.address),
        routing={"breaker": {"consecutive_failures": 3, "open_s": 30}},
    )
    (manifests / "routing.json").write_text(json.dumps(manifest))
    service = start_routed_fd2(manifests, root)
    yield service
    service.stop()


def _chat(client: httpx.Client, model: str, **extra: Any) -> httpx.Response:
    return client.post(
        "/routing/chat/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, **extra},
    )


@pytest.fixture
def client(routed: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=routed.url, timeout=10) as http:
        yield http


def _seen(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(json.loads(response.json()["choices"][0]["message"]["content"]))


def test_round_robin_spreads_and_names_the_target(
    client: httpx.Client, pair: tuple[Service, Service]
) -> None:
    ports = set()
    for _ in range(4):
        response = _chat(client, "both")
        seen = _seen(response)
        ports.add(seen["port"])
        assert seen["model"] == "gpt-4o-mini"
        assert seen["authorization"] == "Bearer test-billing-key"
        assert response.headers["x-fd2-attempts"] == "1"
        assert response.headers["x-fd2-deployment"] in ("both#0", "both#1")
    assert ports == {pair[0].port, pair[1].port}


def test_models_lists_the_aliases(client: httpx.Client) -> None:
    listed = client.get("/routing/chat/v1/models").json()
    assert {m["id"] for m in listed["data"]} >= {"both", "flaky", "hedged"}


def test_unknown_alias_is_an_openai_404(client: httpx.Client) -> None:
    response = _chat(client, "no-such-model")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_500_falls_over_and_the_breaker_opens(client: httpx.Client) -> None:
    attempts = []
    for _ in range(6):
        response = _chat(client, "flaky")
        assert _seen(response)["model"] == "gpt-4o-mini"
        assert response.headers["x-fd2-deployment"] == "good"
        attempts.append(response.headers["x-fd2-attempts"])
    # Three failures in a row open the breaker on `bad`: it is then not tried at all.
    assert attempts == ["2", "2", "2", "1", "1", "1"]
    admin = client.get("/admin/routes", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert '"breaker": "open"' in json.dumps(admin.json())
    metrics = client.get("/metrics").text
    assert "fd2_inference_endpoint_deployment_breaker_state" in metrics
    (state,) = [
        line
        for line in metrics.splitlines()
        if line.startswith("fd2_inference_endpoint_deployment_breaker_state{")
        and 'target="bad"' in line
    ]
    assert state.endswith(" 2.0")


def _streamed(client: httpx.Client, model: str, served_by: str) -> list[str]:
    with client.stream(
        "POST",
        "/routing/chat/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, "stream": True},
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-fd2-deployment"] == served_by
        return [line for line in response.iter_lines() if line.startswith("data: ")]


def _contents(events: list[str]) -> list[str]:
    chunks = [json.loads(event[6:]) for event in events if event != "data: [DONE]"]
    return [
        choice["delta"]["content"]
        for chunk in chunks
        for choice in chunk.get("choices", [])
        if choice["delta"].get("content") and chunk.get("standin") is None
    ]


def test_a_stream_falls_over_before_its_first_chunk_and_is_never_duplicated(
    client: httpx.Client,
) -> None:
    events = _streamed(client, "flaky-stream", "good-s")
    assert events[-1] == "data: [DONE]"
    assert events.count("data: [DONE]") == 1
    assert _contents(events) == ["1;", "2;", "3;", "4;"]


def test_a_hedged_stream_is_the_first_tokens_winner_alone(
    client: httpx.Client, pair: tuple[Service, Service]
) -> None:
    stats = StandinStats(pair[0].url)
    try:
        stats.settle()
        began = time.monotonic()
        events = _streamed(client, "hedged-stream", "hedge-s")
        assert time.monotonic() - began < 0.6
        # Only the winner's events: neither duplicated nor interleaved with the slow attempt's.
        assert _contents(events) == ["1;", "2;", "3;", "4;"]
        assert events.count("data: [DONE]") == 1
        deadline = time.monotonic() + 3
        while stats.get()["cancelled"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stats.get()["cancelled"] == 1
    finally:
        stats.close()


def test_429_moves_to_the_fallback_alias(client: httpx.Client) -> None:
    response = _chat(client, "limited")
    assert _seen(response)["model"] == "gpt-4o-mini"
    assert response.headers["x-fd2-deployment"].startswith("both#")
    # The limited target now cools down (Retry-After, 1 s by default): not even tried.
    again = _chat(client, "limited")
    assert again.status_code == 200
    assert again.headers["x-fd2-attempts"] == "1"


def test_a_dead_target_is_routed_around(client: httpx.Client) -> None:
    response = _chat(client, "unreachable")
    assert response.headers["x-fd2-deployment"] == "alive"
    assert _seen(response)["model"] == "gpt-4o-mini"


def test_a_target_killed_mid_request_loses_no_request(
    routed: Service, mortal: Service, client: httpx.Client
) -> None:
    def call() -> httpx.Response:
        with httpx.Client(base_url=routed.url, timeout=10) as own:
            return _chat(own, "mortal")

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(call) for _ in range(4)]
        time.sleep(0.2)  # all four are waiting on the mortal stand-in now
        os.killpg(mortal.proc.pid, signal.SIGKILL)  # the whole group: its server worker too
        answers = [future.result() for future in futures]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-fd2-deployment"] == "survivor"
    after = _chat(client, "mortal")
    assert after.headers["x-fd2-deployment"] == "survivor"


def test_a_hung_target_times_out_and_the_next_answers(client: httpx.Client) -> None:
    began = time.monotonic()
    response = _chat(client, "hung")
    assert response.headers["x-fd2-deployment"] == "quick"
    assert time.monotonic() - began < 2.0


def test_context_length_moves_to_the_larger_alias(client: httpx.Client) -> None:
    response = _chat(client, "small")
    assert _seen(response)["model"] == "gpt-4o"
    assert response.headers["x-fd2-deployment"] == "large"


def test_hedge_answers_first_and_the_slow_attempt_is_cancelled(
    client: httpx.Client, pair: tuple[Service, Service]
) -> None:
    stats = StandinStats(pair[0].url)
    try:
        stats.settle()
        began = time.monotonic()
        response = _chat(client, "hedged")
        took = time.monotonic() - began
        assert response.headers["x-fd2-deployment"] == "hedge"
        assert response.headers["x-fd2-attempts"] == "2"
        assert took < 0.6
        deadline = time.monotonic() + 3
        while stats.get()["cancelled"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stats.get()["cancelled"] == 1  # the loser's connection was closed
    finally:
        stats.close()


def test_every_target_failing_stays_within_the_retry_budget(
    client: httpx.Client, pair: tuple[Service, Service]
) -> None:
    stats = [StandinStats(service.url) for service in pair]
    try:
        for one in stats:
            one.settle()
        requests = 200
        for _ in range(requests):
            assert _chat(client, "broken").status_code == 502  # a plain-text 500, not relayed
        attempts = sum(one.get()["started"] for one in stats)
        # 20% of requests plus the starting balance of 10 (and what earlier tests left of it).
        assert requests <= attempts <= requests * 1.2 + 10
    finally:
        for one in stats:
            one.close()
