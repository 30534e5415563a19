"""Rate limits end to end on one fd2 (in-process limiter): headers on every answer that moves,
429 with Retry-After, per-credential limits from keys and from the JWT `rate_limit` claim, and
token reservations settled with the real usage after a stream."""

from __future__ import annotations

import json
import time

import httpx
import openai

from fd2_inference.metering import count_chat

from ..support import assert_openai_error, chat_body
from ..test_request_metrics import scrape, total
from .conftest import KEYS, AuthGateway


def chat(gw: AuthGateway, module: str, credential: str, body: bytes | None = None):
    return httpx.post(
        f"{gw.fd2.url}/acme/{module}/v1/chat/completions",
        content=body or chat_body("gpt-4o-mini"),
        headers={"Authorization": f"Bearer {credential}"},
        timeout=20,
    )


def test_remaining_moves_then_429_with_retry_after(auth_gateway: AuthGateway):
    answers = [chat(auth_gateway, "metered", KEYS["metered"]) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == [
        "3",
        "2",
        "1",
        "0",
        "0",
    ]
    assert {a.headers["x-ratelimit-limit-requests"] for a in answers} == {"4"}
    refused = answers[-1]
    error = assert_openai_error(refused.content, status=429)
    assert error["code"] == "rate_limit_exceeded"
    assert error["type"] == "requests"
    # one request per 15 s comes back: the client is told how long to wait
    assert 1 <= int(refused.headers["retry-after"]) <= 15
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")


def test_a_keys_own_limit_follows_the_key_not_the_route(auth_gateway: AuthGateway):
    limited = [chat(auth_gateway, "keyed", KEYS["limited"]).status_code for _ in range(4)]
    assert limited == [200, 200, 200, 429]
    assert chat(auth_gateway, "keyed", KEYS["all"]).status_code == 200


def test_the_jwt_rate_limit_claim_is_that_callers_limit(auth_gateway: AuthGateway):
    bob = auth_gateway.token(sub="bob", rate_limit=2)
    carol = auth_gateway.token(sub="carol", rate_limit=2)
    answers = [chat(auth_gateway, "claimed", bob) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    # `rate_limit` is per hour unless the jwt module says otherwise: one request back per 30 min
    assert 1700 <= int(answers[-1].headers["retry-after"]) <= 1800
    answer = chat(auth_gateway, "claimed", carol)
    assert answer.status_code == 200
    # the caller's 2-per-hour bucket is the one closest to empty, so the headers show it
    assert answer.headers["x-ratelimit-limit-requests"] == "2"


def test_stream_tokens_are_reserved_then_settled_with_the_usage(auth_gateway: AuthGateway):
    sdk = openai.OpenAI(base_url=f"{auth_gateway.fd2.url}/acme/tokened/v1", api_key=KEYS["all"])
    with sdk:
        first = sdk.chat.completions.with_raw_response.create(
            model="chunks-5",
            messages=[{"role": "user", "content": "count to five please"}],
            max_tokens=100,
            stream=True,
            stream_options={"include_usage": True},
        )
        started = time.monotonic()
        usage = [chunk.usage for chunk in first.parse() if chunk.usage][-1]
        # The stand-in counts the prompt as OpenAI does, then 5 chunks.
        assert (
            usage.total_tokens
            == count_chat([{"role": "user", "content": "count to five please"}]) + 5
        )
        limit = int(first.headers["x-ratelimit-limit-tokens"])
        reserved = limit - int(first.headers["x-ratelimit-remaining-tokens"])
        assert reserved >= 100  # the completion bound was reserved up front
        second = sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "count to five please"}],
            max_tokens=100,
        )
        elapsed = time.monotonic() - started
    remaining = int(second.headers["x-ratelimit-remaining-tokens"])
    # Had the first reservation not been settled, `limit - 2 * reserved` would remain; settled,
    # only its real usage is gone (plus what refilled meanwhile: 10 tokens a second).
    expected = limit - usage.total_tokens - reserved
    assert expected <= remaining <= expected + int(10 * elapsed) + 1
    assert json.loads(second.http_response.content)["usage"]["total_tokens"] > 0


def test_a_request_bigger_than_the_token_limit_is_refused_as_tokens(auth_gateway: AuthGateway):
    body = chat_body("gpt-4o-mini", max_tokens=5000)  # the module allows 600 tokens a minute
    answer = chat(auth_gateway, "tokened", KEYS["all"], body)
    assert answer.status_code == 429
    assert assert_openai_error(answer.content)["type"] == "tokens"
    assert int(answer.headers["retry-after"]) >= 1
    listing = httpx.get(
        f"{auth_gateway.fd2.url}/acme/tokened/v1/models",
        headers={"api-key": KEYS["all"]},
        timeout=10,
    )
    assert listing.status_code == 200
    assert "x-ratelimit-limit-tokens" in listing.headers


def test_gateway_errors_from_the_module_carry_the_headers_too(auth_gateway: AuthGateway):
    def failures() -> float:
        samples = scrape(auth_gateway.fd2).get("fd2_upstream_errors_total", {})
        return total(samples, project="acme", module="keyed")

    before = failures()
    # the stand-in answers `garbage` with a body that is not JSON: the module raises a 502
    answer = chat(auth_gateway, "keyed", KEYS["all"], chat_body("garbage"))
    assert answer.status_code == 502
    assert_openai_error(answer.content, status=502)
    assert answer.headers["x-ratelimit-limit-requests"] == "20"
    assert answer.headers["x-request-id"]
    assert failures() == before + 1  # counted once, by whoever rendered it
