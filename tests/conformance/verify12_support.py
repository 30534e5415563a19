"""Helpers of the issue-12 verification tests (test_verify12_*.py): one more fd2 over the replay
stand-in, with modules the conformance manifest has not (Azure without a fixed deployment, the
`drop` policy), transcripts altered per test, and the checks every error answer must pass."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from e2e.conftest import Service, start_fd2
from e2e.leaks import LEAKS

from .conftest import PROJECT, TRANSCRIPTS, manifest, providers

PROVIDERS = [provider.name for provider in providers()]
TRANSLATED = [name for name in PROVIDERS if name != "openai"]
SSE_PROVIDERS = [name for name in PROVIDERS if name != "bedrock"]
AZURE_BY_MODEL = "azure-by-model"
"""Azure with no `deployment` setting: the request's model names the deployment (in the path)."""
DROP = "-drop"
"""Suffix of a copy of each translated provider's module under `unsupported_params: drop`."""


def verify_manifest(replay: str) -> dict[str, Any]:
    raw = manifest(replay)
    overlay = raw["metadata"]["fd2"]["modules"]
    base = {module["name"]: module for module in raw["modules"]}
    azure = copy.deepcopy(base["azure"])
    azure["name"] = AZURE_BY_MODEL
    raw["modules"].append(azure)
    config = {k: v for k, v in overlay["azure"]["config"].items() if k != "deployment"}
    overlay[AZURE_BY_MODEL] = {"auth": {"mode": "none"}, "config": config}
    for name in TRANSLATED:
        module = copy.deepcopy(base[name])
        module["name"] = name + DROP
        raw["modules"].append(module)
        overlay[name + DROP] = {
            "auth": {"mode": "none"},
            "config": {**overlay[name]["config"], "unsupported_params": "drop"},
        }
    return raw


@pytest.fixture(scope="session")
def verify_fd2(
    replay: Service, conformance_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("verify12-manifests")
    (directory / "conformance.json").write_text(json.dumps(verify_manifest(replay.address)))
    service = start_fd2(directory, conformance_logs, name="fd2-verify12")
    yield service
    service.stop()


def transcript(provider: str, scenario: str) -> dict[str, Any]:
    provider = provider.removesuffix(DROP)
    if provider == AZURE_BY_MODEL:
        provider = "azure"
    return dict(json.loads((TRANSCRIPTS / provider / f"{scenario}.json").read_text()))


def secrets_of(provider: str) -> list[str]:
    config = next(p.config for p in providers() if p.name == provider.removesuffix(DROP))
    return [
        value
        for key, value in config.items()
        if key in ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    ]


def chat_url(fd2: Service, module: str, path: str = "/v1/chat/completions") -> str:
    return f"{fd2.url}/{PROJECT}/{module}{path}"


def base_url(fd2: Service, module: str) -> str:
    return f"{fd2.url}/{PROJECT}/{module}/v1"


def sse_text(events: list[dict[str, Any]]) -> bytes:
    """A transcript's `events` as the bytes the stand-in sends."""
    out = b""
    for event in events:
        if event.get("event"):
            out += b"event: " + event["event"].encode() + b"\n"
        data = event.get("data")
        out += b"data: " + (data.encode() if isinstance(data, str) else orjson.dumps(data))
        out += b"\n\n"
    return out


def assert_clean_error(
    response: httpx.Response, status: int | None = None, *, anthropic: bool = False
) -> dict[str, Any]:
    """An error answer as every client must get it: the shape, a request id, no secret, no
    stack trace, no upstream HTML."""
    text = response.text
    assert response.status_code >= 400, text[:500]
    if status is not None:
        assert response.status_code == status, text[:500]
    assert response.headers.get("x-request-id"), "no request id"
    assert response.headers.get("content-type", "").startswith("application/json")
    assert_no_secret(response.content)
    assert "Traceback" not in text and "<html" not in text.lower()
    assert len(response.content) < 16_384, "an error answer of many bytes"
    body = response.json()
    if anthropic:
        assert body["type"] == "error"
        error = body["error"]
    else:
        error = body["error"]
        assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def assert_no_secret(content: bytes) -> None:
    for secret in LEAKS.secrets:
        assert secret not in content, "a test secret reached the client"


def sse_events(content: bytes) -> list[str]:
    """The `data:` payloads of an SSE answer, in order."""
    out = []
    for block in content.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:")]
        if data:
            out.append(b"\n".join(data).decode())
    return out


def assert_one_error_then_end(content: bytes) -> dict[str, Any]:
    """A stream that failed after it started: one OpenAI error event, last, no [DONE]."""
    assert_no_secret(content)
    assert b"Traceback" not in content
    events = sse_events(content)
    errors = [e for e in events if e != "[DONE]" and "error" in json.loads(e)]
    assert len(errors) == 1, events[-5:]
    assert events[-1] == errors[0], events[-3:]
    error = json.loads(errors[0])["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "<html" not in error["message"].lower()
    return dict(error)


def member_paths(
    value: Any, where: tuple[Any, ...] = (), *, list_items: int | None = None
) -> Iterator[tuple[Any, ...]]:
    """Every member path of a JSON value (keys and list indexes), three levels deep at most;
    `list_items`: only that many items of each list."""
    if len(where) >= 4:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*where, key)
            yield from member_paths(inner, (*where, key), list_items=list_items)
    elif isinstance(value, list):
        for index, inner in enumerate(value[:list_items]):
            yield (*where, index)
            yield from member_paths(inner, (*where, index), list_items=list_items)


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A deep copy of `value` with the member at `path` set to `new`."""
    out = copy.deepcopy(value)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out
