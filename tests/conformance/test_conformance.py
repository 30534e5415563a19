"""One test per (provider, scenario): the scenario's SDK call through fd2, the provider's side
replayed from its transcript; the request fd2 sent and what the SDK saw are both checked."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from e2e.conftest import Service
from e2e.leaks import LEAKS

from .conftest import PROJECT, TRANSCRIPTS, Replay, providers
from .scenarios import SCENARIOS, Scenario

CASES = [(provider.name, scenario) for provider in providers() for scenario in SCENARIOS]


def _transcript(provider: str, scenario: str) -> dict[str, Any] | None:
    path = TRANSCRIPTS / provider / f"{scenario}.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.mark.parametrize(
    ("provider", "scenario"),
    CASES,
    ids=[f"{provider}-{scenario.name}" for provider, scenario in CASES],
)
def test_conformance(
    provider: str, scenario: Scenario, conformance_fd2: Service, replayer: Replay
) -> None:
    transcript = _transcript(provider, scenario.name)
    refused = scenario.refused.get(provider)
    if refused is not None:
        assert transcript is None, f"{scenario.name} is refused for {provider}: drop its transcript"
    elif transcript is None:
        pytest.fail(
            f"missing transcript transcripts/{provider}/{scenario.name}.json (or declare the "
            f"scenario refused for {provider} in scenarios.py)",
            pytrace=False,
        )
    replayer.load(transcript)
    client = openai.OpenAI(
        base_url=f"{conformance_fd2.url}/{PROJECT}/{provider}/v1",
        api_key="unused",
        max_retries=0,
        timeout=30.0,
    )
    try:
        _run(client, provider, scenario, refused)
    finally:
        client.close()
    calls = 0 if transcript is None else len(transcript.get("exchanges") or [transcript])
    result = _settled(replayer, expected=calls)
    assert not result["mismatches"], "fd2's request differs from the transcript:\n" + "\n".join(
        result["mismatches"]
    )
    assert result["requests"] == calls


def _run(client: openai.OpenAI, provider: str, scenario: Scenario, refused: str | None) -> None:
    if refused is not None:
        with pytest.raises(openai.BadRequestError) as caught:
            scenario.call(client)
        error = caught.value.response.json()["error"]
        assert error["param"] == refused
        assert error["message"]
        return
    expected = scenario.error
    if expected is None:
        scenario.check(scenario.call(client), provider)
        return
    with pytest.raises(openai.APIStatusError) as raised:
        scenario.call(client)
    response = raised.value.response
    assert response.status_code == expected.status, response.text
    # The SDK's own HTTP client is not seen by the suite-wide leak check: checked here.
    for secret in LEAKS.secrets:
        assert secret not in response.content, "a test secret reached the client"
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert response.headers.get("x-request-id")
    for name, value in expected.headers.items():
        assert response.headers.get(name) == value, f"header {name} not passed through"


def _settled(replayer: Replay, expected: int) -> dict[str, Any]:
    """The stand-in's record once the expected request has reached it (a refused call must
    not; a cut stream's request is counted before the test ends)."""
    deadline = time.monotonic() + 2.0
    result = replayer.result()
    while result["requests"] < expected and time.monotonic() < deadline:
        time.sleep(0.02)
        result = replayer.result()
    return result
