"""The metering contract end to end: modules that are not OpenAI-shaped, loaded by fd2 under
Granian (`--module-packages meter_probe`), behind a tokens-per-minute limit.

Each request reserves the module's estimate (prompt words + max_tokens); what the next answer's
`x-ratelimit-remaining-tokens` says shows how the first was settled: with the usage the module
reported (Anthropic-shaped, converted by the module), or — for a module that reports none — with
its estimate, never with nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ..conftest import Service
from ..support import REPO, assert_openai_error
from .conftest import LEAKS, key_hash, start_auth_fd2

PROBES = REPO / "tests" / "e2e" / "metering_modules"
KEY = "fd2_metering-probe-key-00000000000000000000"
SONNET_KEY = "fd2_metering-sonnet-only-00000000000000000"
LIMIT = 600  # tokens a minute: 10 come back each second
PROMPT = "one two three four five"  # 5 tokens by the probes' own rule
BOUND = 200
RESERVED = 5 + BOUND

for _secret in (KEY, SONNET_KEY):
    LEAKS.add_secret(_secret)


def probe(name: str, cls: str, module_type: str) -> dict[str, Any]:
    return {
        "module_type": module_type,
        "name": name,
        "runtime": {"type": "python:3.11", "implementation": f"meter_probe.{cls}"},
        "auth": {"mode": "api_key"},
        "limits": {"tokens_per_minute": LIMIT},
    }


def manifest() -> dict[str, Any]:
    return {
        "project_id": "probe",
        "environment": "development",
        "environments": {"development": {}},
        "modules": [
            probe("anthropic", "AnthropicShaped", "anthropic_probe"),
            probe("anthropic-stream", "AnthropicShaped", "anthropic_probe"),
            probe("silent", "Silent", "silent_probe"),
            probe("models", "AnthropicShaped", "anthropic_probe"),
        ],
        "api_keys": [
            {"id": "all", "hash": key_hash(KEY)},
            {"id": "sonnet-only", "hash": key_hash(SONNET_KEY), "models": ["sonnet"]},
        ],
    }


@dataclass
class Probes:
    fd2: Service

    def post(self, module: str, path: str, key: str = KEY, **body: Any) -> httpx.Response:
        payload = {"model": "sonnet", "prompt": PROMPT, "max_tokens": BOUND, **body}
        return httpx.post(
            f"{self.fd2.url}/probe/{module}{path}",
            json=payload,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probes]:
    directory = tmp_path_factory.mktemp("metering")
    manifests = directory / "manifests"
    manifests.mkdir()
    (manifests / "probe.json").write_text(json.dumps(manifest()))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", str(PROBES))  # the fd2 process imports the probes from here
        fd2 = start_auth_fd2(manifests, directory, "--module-packages", "meter_probe")
    try:
        yield Probes(fd2)
    finally:
        fd2.stop()


def remaining(answer: httpx.Response) -> int:
    assert answer.status_code == 200, answer.text
    return int(answer.headers["x-ratelimit-remaining-tokens"])


def assert_settled(second: httpx.Response, charged: int, elapsed: float) -> None:
    """The second answer's bucket: the first request's `charged` tokens and the second's
    reservation gone, plus what refilled meanwhile."""
    expected = LIMIT - charged - RESERVED
    assert expected <= remaining(second) <= expected + int(10 * elapsed) + 1


def test_anthropic_shaped_usage_settles_the_reservation(probes: Probes) -> None:
    first = probes.post("anthropic", "/v1/messages", output_tokens=7, cached=2)
    began = time.monotonic()
    assert remaining(first) == LIMIT - RESERVED  # the estimate was reserved up front
    # the provider's shape is relayed as it is; the core got it converted
    assert first.json()["usage"] == {
        "input_tokens": 3,
        "cache_read_input_tokens": 2,
        "output_tokens": 7,
    }
    second = probes.post("anthropic", "/v1/messages", output_tokens=7, cached=2)
    # 5 prompt tokens (cache reads included) + 7 generated: 12, not the 205 reserved
    assert_settled(second, 12, time.monotonic() - began)


def test_a_stream_is_settled_once_it_has_ended(probes: Probes) -> None:
    with httpx.stream(
        "POST",
        f"{probes.fd2.url}/probe/anthropic-stream/v1/messages",
        json={
            "model": "sonnet",
            "prompt": PROMPT,
            "max_tokens": BOUND,
            "stream": True,
            "output_tokens": 30,
        },
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ) as first:
        assert first.headers["content-type"] == "text/event-stream"
        assert remaining(first) == LIMIT - RESERVED
        events = first.read().split(b"\n\n")
    began = time.monotonic()
    assert events[0].startswith(b"event: message_start")
    assert b'"output_tokens":30' in events[2]
    second = probes.post("anthropic-stream", "/v1/messages", output_tokens=1)
    assert_settled(second, 5 + 30, time.monotonic() - began)


def test_a_module_that_reports_nothing_is_charged_its_estimate(probes: Probes) -> None:
    first = probes.post("silent", "/v1/generate")
    began = time.monotonic()
    assert remaining(first) == LIMIT - RESERVED
    assert first.json() == {"text": "5 words heard"}
    second = probes.post("silent", "/v1/generate")
    # charged the whole estimate: had it been refunded, LIMIT - RESERVED would remain
    assert_settled(second, RESERVED, time.monotonic() - began)


def test_the_model_a_key_may_use_comes_from_the_modules_meter(probes: Probes) -> None:
    assert probes.post("models", "/v1/messages", key=SONNET_KEY).status_code == 200
    refused = probes.post("models", "/v1/messages", key=SONNET_KEY, model="opus")
    assert_openai_error(refused.content, status=403)
    assert refused.status_code == 403
    # the module's own rule decides what a valid request is, before any limit is taken
    bad = probes.post("models", "/v1/messages", max_tokens="lots")
    assert bad.status_code == 400
    assert assert_openai_error(bad.content)["param"] == "max_tokens"
