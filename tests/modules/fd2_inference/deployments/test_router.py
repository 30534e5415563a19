"""The attempt loop over a scripted client (the `client.Client` interface): which targets are
tried, when it stops, what the budget allows. Real sockets are the e2e tests' (test_deployments)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import aiohttp

from fd2.module import Timeouts
from fd2.serving.errors import Fd2Error, UpstreamError
from fd2.telemetry.module_metrics import ModuleMetrics
from fd2_inference.deployments.client import Response
from fd2_inference.deployments.config import Cause, load_deployments
from fd2_inference.deployments.router import Router
from fd2_inference.deployments.router_metrics import RouterMetrics


class _Answer:
    def __init__(self, status: int, body: bytes, delay_s: float = 0.0) -> None:
        self.status = status
        self.body = body
        self.delay_s = delay_s


class ScriptedClient:
    """Answers by host: a status and body, or a refused connection (`None`)."""

    def __init__(self, script: Mapping[str, _Answer | None]) -> None:
        self.script = script
        self.sent: list[str] = []

    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        host = url.split("/")[2]
        self.sent.append(host)
        answer = self.script[host]
        if answer is None:
            raise aiohttp.ServerDisconnectedError()
        await asyncio.sleep(answer.delay_s)
        return cast(Response, answer)

    def head(self, response: Response) -> tuple[int, Mapping[str, str], Any]:
        answer = cast(_Answer, response)
        return answer.status, {"content-type": "application/json"}, ()

    async def first_chunk(self, response: Response) -> bytes:
        return cast(_Answer, response).body

    async def whole(self, response: Response, limit: int) -> bytes | None:
        return cast(_Answer, response).body

    def close(self, response: Response) -> None:
        return None

    def failure(self, exc: BaseException, total_s: float) -> tuple[Cause, Fd2Error] | None:
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "connect", UpstreamError("refused")
        return None


OK = _Answer(200, b'{"ok": true}')
FAIL = _Answer(500, b'{"error": {"message": "down"}}')


def _router(deployments: dict[str, Any], client: ScriptedClient, **routing: Any) -> Router:
    spec, keys = load_deployments({"deployments": deployments, "routing": routing}, {})
    metrics = RouterMetrics(ModuleMetrics.unregistered())
    return Router(spec, keys, Timeouts(), client, metrics)


def _targets(*hosts: str) -> list[dict[str, Any]]:
    return [
        {"base_url": f"http://{host}/v1", "name": host, "priority": i}
        for i, host in enumerate(hosts)
    ]


async def test_priority_fails_over_and_stops_at_the_first_good_answer() -> None:
    client = ScriptedClient({"a": FAIL, "b": OK, "c": OK})
    router = _router({"m": {"strategy": "priority", "targets": _targets("a", "b", "c")}}, client)
    outcome = await router.run("m", "/chat/completions", {"model": "m"}, "r1", stream=False)
    assert outcome.served_by == "b"
    assert outcome.attempts == 2
    assert client.sent == ["a", "b"]


async def test_retry_on_narrowed_relays_the_first_failure() -> None:
    client = ScriptedClient({"a": FAIL, "b": OK})
    router = _router(
        {"m": {"strategy": "priority", "retry_on": ["connect"], "targets": _targets("a", "b")}},
        client,
    )
    outcome = await router.run("m", "/chat/completions", {"model": "m"}, "r1", stream=False)
    assert outcome.tried.cause == "5xx"
    assert outcome.attempts == 1


async def test_max_attempts_bounds_one_request() -> None:
    client = ScriptedClient({host: FAIL for host in "abcde"})
    router = _router(
        {"m": {"strategy": "priority", "max_attempts": 2, "targets": _targets(*"abcde")}}, client
    )
    outcome = await router.run("m", "/chat/completions", {"model": "m"}, "r1", stream=False)
    assert outcome.attempts == 2


async def test_the_budget_stops_retries_once_spent() -> None:
    client = ScriptedClient({"a": FAIL, "b": FAIL})
    router = _router(
        {"m": {"targets": _targets("a", "b")}},
        client,
        retry_budget={"ratio": 0.0, "min_tokens": 3},
        breaker={"consecutive_failures": 1000},
    )
    attempts = [
        (await router.run("m", "/chat/completions", {}, "r", stream=False)).attempts
        for _ in range(6)
    ]
    assert attempts == [2, 2, 2, 1, 1, 1]
    assert router.budget.denied == 3


async def test_fallback_alias_after_the_aliases_targets() -> None:
    client = ScriptedClient({"a": None, "z": OK})
    router = _router(
        {
            "m": {"targets": _targets("a"), "fallbacks": ["spare"]},
            "spare": {"targets": [{"base_url": "http://z/v1", "name": "z", "model": "other"}]},
        },
        client,
    )
    outcome = await router.run("m", "/chat/completions", {"model": "m"}, "r", stream=False)
    assert outcome.served_by == "z"
    assert outcome.fallbacks == 1


async def test_a_hedge_wins_over_a_slow_first_attempt() -> None:
    client = ScriptedClient({"a": _Answer(200, b"{}", delay_s=0.5), "b": OK})
    router = _router(
        {
            "m": {
                "strategy": "priority",
                "hedge": {"delay_ms": 20},
                "targets": _targets("a", "b"),
            }
        },
        client,
    )
    outcome = await router.run("m", "/chat/completions", {"model": "m"}, "r", stream=False)
    assert outcome.served_by == "b"
    assert outcome.hedges == 1
    assert outcome.attempts == 2
    assert router.deployments["m"].targets[0].in_flight == 0  # the loser was cancelled


async def test_every_breaker_open_still_sends_one_attempt() -> None:
    client = ScriptedClient({"a": FAIL})
    router = _router(
        {"m": {"targets": _targets("a")}}, client, breaker={"consecutive_failures": 1, "open_s": 60}
    )
    for _ in range(3):
        outcome = await router.run("m", "/chat/completions", {}, "r", stream=False)
        assert outcome.attempts == 1
    assert client.sent == ["a", "a", "a"]  # panic routing: never refused outright
