"""PII redaction and the audit trail with real processes: fd2 under Granian with a real
redis-server, an upstream that echoes what it got (split into events where the test says), the
official SDK. Audit records are read back from the JSON Lines file and the Redis Stream."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import redis

from ..conftest import Service, fd2_argv, fd2_env, free_port, start_service
from ..leaks import LEAKS
from ..redis_server import running_redis

API_KEY = "fd2_privacy-e2e-key-7d1f0c2b9a8e4d6f"
OTHER_KEY = "fd2_privacy-e2e-other-3c5e7a9b1d2f4e6a"
LEAKS.add_secret(API_KEY)
LEAKS.add_secret(OTHER_KEY)
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
STREAM_KEY = "fd2:audit-e2e"


def manifest(upstream: str, module: str, **extra: Any) -> dict[str, Any]:
    return {
        "project": "privacy",
        "module": module,
        "module_type": "inference_openai",
        "runtime": {"type": "python:3.11", "implementation": "fd2_inference.InferenceModule"},
        "endpoints": {"dev": {"primary": f"http://{upstream}/v1"}},
        "configuration_references": [
            {"name": "api_key", "source": "env:BILLING_UPSTREAM_API_KEY", "required": True}
        ],
        "default_environment": "dev",
        **extra,
    }


@dataclass
class Stack:
    fd2: Service
    upstream: Service
    audit_file: Path
    redis_url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("privacy")
    port = free_port()
    script = Path(__file__).with_name("scripted_upstream.py")
    upstream = start_service(
        "scripted-upstream",
        [sys.executable, str(script), "--port", str(port)],
        port=port,
        ready_path="/_scripted/calls",
        log_dir=root,
    )
    manifests = root / "manifests"
    manifests.mkdir()
    digest = hmac.new(b"", API_KEY.encode(), hashlib.sha256).hexdigest()
    guard = manifest(
        upstream.address,
        "guard",
        auth={"mode": "api_key"},
        api_keys=[{"id": "team-a", "hash": digest}],
        redaction={"kinds": {"card": "block", "ipv4": "detect"}},
        audit={},
    )
    answers = manifest(
        upstream.address,
        "answers",
        auth={"mode": "none"},
        redaction={"on": ["response"]},
        audit={"content": True},
    )
    cached = manifest(
        upstream.address,
        "cached",
        auth={"mode": "none"},
        cache={"ttl_s": 60},
        redaction={"on": ["response"]},
        audit={},
    )
    mine = manifest(
        upstream.address,
        "mine",
        auth={"mode": "api_key"},
        api_keys=[
            {"id": "team-a", "hash": digest},
            {"id": "team-b", "hash": hmac.new(b"", OTHER_KEY.encode(), hashlib.sha256).hexdigest()},
        ],
        cache={"scope": "caller"},
    )
    for raw in (guard, answers, cached, mine):
        (manifests / f"{raw['module']}.module.json").write_text(json.dumps(raw))
    audit_file = root / "audit.jsonl"
    try:
        with running_redis(root) as redis_url:
            fd2_port = free_port()
            argv = fd2_argv(
                "serve", "--host", "127.0.0.1", "--port", str(fd2_port),
                "--manifests", str(manifests), "--default-env", "development",
                "--workers", "1", "--redis-url", redis_url, "--redis-timeout", "0.5",
                "--audit-file", str(audit_file), "--audit-stream", STREAM_KEY,
            )  # fmt: skip
            service = start_service(
                "fd2-privacy", argv, port=fd2_port, ready_path="/healthz", log_dir=root,
                env=fd2_env(),
            )  # fmt: skip
            try:
                yield Stack(service, upstream, audit_file, redis_url)
            finally:
                service.stop()
    finally:
        upstream.stop()


def sdk(stack: Stack, module: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{stack.fd2.url}/privacy/{module}/v1",
        api_key=API_KEY,
        max_retries=0,
        timeout=30,
    )


def last_upstream_body(stack: Stack) -> dict[str, Any]:
    return dict(httpx.get(f"{stack.upstream.url}/_scripted/last").json())


def upstream_calls(stack: Stack) -> int:
    return int(httpx.get(f"{stack.upstream.url}/_scripted/calls").json())


def records(stack: Stack, request_id: str, timeout: float = 10.0) -> tuple[dict[str, Any], ...]:
    """The audit record of `request_id` from the file and from the stream (waits for both)."""
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(stack.redis_url)
    try:
        while True:
            lines = stack.audit_file.read_text() if stack.audit_file.exists() else ""
            in_file = [
                r for r in map(orjson.loads, lines.splitlines()) if r["request_id"] == request_id
            ]
            in_stream = [
                orjson.loads(fields[b"record"])
                for _, fields in client.xrange(STREAM_KEY)
                if orjson.loads(fields[b"record"])["request_id"] == request_id
            ]
            if in_file and in_stream:
                assert len(in_file) == len(in_stream) == 1
                assert in_file[0] == in_stream[0]
                return in_file[0], lines, client.xlen(STREAM_KEY)
            assert time.monotonic() < deadline, f"no audit record of {request_id}"
            time.sleep(0.05)
    finally:
        client.close()


def test_the_request_is_redacted_before_it_leaves(stack: Stack) -> None:
    with sdk(stack, "guard") as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"mail {EMAIL} from 10.1.2.3 please"}],
        )
    sent = last_upstream_body(stack)["messages"][0]["content"]
    assert sent == "mail [EMAIL] from 10.1.2.3 please"  # ipv4 is detect-only
    assert raw.parse().choices[0].message.content == sent
    record, text, _ = records(stack, raw.headers["x-request-id"])
    assert record["caller"] == "key:team-a"
    # The echoed answer carries the (detect-only) address back: counted on the way out too.
    assert record["redactions"] == {"request.email": 1, "request.ipv4": 1, "response.ipv4": 1}
    assert record["status"] == 200 and record["model"] == "gpt-4o-mini"
    assert record["prompt_tokens"] > 0 and record["completion_tokens"] > 0
    assert "request" not in record and "response" not in record  # content is off here
    assert API_KEY not in text and EMAIL not in text


def test_a_blocked_kind_is_refused_with_400_naming_it(stack: Stack) -> None:
    before = upstream_calls(stack)
    with sdk(stack, "guard") as client, pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"card {CARD}"}]
        )
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "pii_blocked" and error["param"] == "card"
    assert "payment card" in error["message"] and "4111" not in json.dumps(error)
    assert upstream_calls(stack) == before
    request_id = refused.value.response.headers["x-request-id"]
    record, text, _ = records(stack, request_id)
    assert record["status"] == 400 and record["error"] == "pii_blocked"
    assert record["redactions"] == {"request.card": 1}
    assert "4111" not in text


def test_a_refused_credential_is_audited_without_it(stack: Stack) -> None:
    wrong = "fd2_not-the-right-key-000000000000"
    LEAKS.add_secret(wrong)
    answer = httpx.post(
        f"{stack.fd2.url}/privacy/guard/v1/chat/completions",
        headers={"Authorization": f"Bearer {wrong}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 401
    record, text, _ = records(stack, answer.headers["x-request-id"])
    assert record["status"] == 401 and "caller" not in record
    assert wrong not in text


def test_the_answer_is_redacted_plain_and_streamed(stack: Stack) -> None:
    text = f"My card is {CARD} and my mail {EMAIL}, thanks"
    with sdk(stack, "answers") as client:
        plain = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
        )
        # The upstream got the text as it was (this module redacts answers only).
        assert last_upstream_body(stack)["messages"][0]["content"] == text
        content = plain.parse().choices[0].message.content
        assert content == "My card is [CARD] and my mail [EMAIL], thanks"
        # Streamed in 3-character pieces: the card number is split across six events.
        chunks = list(
            client.chat.completions.create(
                model="split-3",
                messages=[{"role": "user", "content": text}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == "My card is [CARD] and my mail [EMAIL], thanks"
    assert chunks[-1].usage is not None  # the usage chunk is still last
    record, lines, _ = records(stack, plain.headers["x-request-id"])
    assert record["redactions"] == {"response.card": 1, "response.email": 1}
    assert record["response"]["choices"][0]["message"]["content"] == content  # as sent
    assert record["request"]["messages"][0]["content"] == text  # content is on here
    assert API_KEY not in lines


def test_a_raw_stream_never_carries_the_split_card(stack: Stack) -> None:
    body = {
        "model": "split-2",
        "stream": True,
        "messages": [{"role": "user", "content": f"x {CARD} y"}],
    }
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST", f"{stack.fd2.url}/privacy/answers/v1/chat/completions", json=body
        ) as response,
    ):
        raw = response.read()
    assert response.status_code == 200
    digits = "".join(ch for ch in raw.decode() if ch.isdigit())
    assert "41111111" not in digits
    assert raw.endswith(b"data: [DONE]\n\n")


def test_the_cache_holds_redacted_answers_and_audit_sees_its_hits(stack: Stack) -> None:
    messages = [{"role": "user", "content": f"write to {EMAIL} today"}]
    with sdk(stack, "cached") as client:
        create = client.chat.completions.with_raw_response.create
        first = create(model="gpt-4o-mini", messages=messages)
        second = create(model="gpt-4o-mini", messages=messages)
    assert [first.headers["x-fd2-cache"], second.headers["x-fd2-cache"]] == ["miss", "hit"]
    for answer in (first, second):
        assert answer.parse().choices[0].message.content == "write to [EMAIL] today"
    # The cache sits outside redaction: Redis holds the answer as the client got it.
    client_ = redis.Redis.from_url(stack.redis_url)
    try:
        stored = [client_.get(key) for key in client_.scan_iter("fd2:cache:privacy:*")]
    finally:
        client_.close()
    assert stored and all(EMAIL.encode() not in (value or b"") for value in stored)
    missed, _, _ = records(stack, first.headers["x-request-id"])
    hit, _, _ = records(stack, second.headers["x-request-id"])
    assert missed["cache"] == "miss" and missed["redactions"] == {"response.email": 1}
    assert hit["cache"] == "hit" and "redactions" not in hit
    assert hit["prompt_tokens"] == 0 and hit["completion_tokens"] == 0


def test_a_caller_scoped_cache_keeps_each_callers_entries_apart(stack: Stack) -> None:
    messages = [{"role": "user", "content": "the same question"}]
    states = []
    for key in (API_KEY, API_KEY, OTHER_KEY, OTHER_KEY):
        client = sdk(stack, "mine")
        client.api_key = key
        with client:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=messages
            )
        states.append(raw.headers["x-fd2-cache"])
    assert states == ["miss", "hit", "miss", "hit"]
