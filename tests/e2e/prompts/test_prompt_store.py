"""Prompts in the Redis store through the admin API, run by id through `/v1/responses` (the SDK's
`prompt` parameter) on two replicas: a change made at one is served by the other within a second.
Bad versions are refused when they are created; bad references are 400/404 naming the problem."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from ..conftest import Service
from ..support import assert_no_leak, assert_openai_error
from .conftest import PROJECT

VERSION_1 = {
    "messages": [
        {"role": "system", "content": "Answer in {{ tone }} tone."},
        {"role": "user", "content": "Tell me about {{ topic }}."},
    ],
    "input_schema": {
        "type": "object",
        "properties": {
            "tone": {"type": "string", "enum": ["formal", "casual"], "default": "formal"},
            "topic": {"type": "string", "minLength": 1},
        },
        "required": ["topic"],
    },
    "parameters": {"temperature": 0.3},
}
VERSION_2 = {
    **VERSION_1,
    "messages": [{"role": "user", "content": "v2 about {{ topic }} ({{ tone }})"}],
}


def new_id() -> str:
    return f"p-{uuid.uuid4().hex[:12]}"


def echoed(text: str) -> list[list[str]]:
    turns: list[list[str]] = json.loads(text)["messages"]
    return turns


def sdk(service: Service) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{service.url}/{PROJECT}/scripted/v1", api_key="unused", max_retries=0
    )


def test_create_run_label_and_see_the_change_on_the_other_replica(
    replicas: tuple[Service, Service], admin: httpx.Client
) -> None:
    a, b = replicas
    prompt_id = new_id()
    created = admin.post(f"/admin/prompts/{PROJECT}/{prompt_id}/versions", json=VERSION_1)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    client_a, client_b = sdk(a), sdk(b)
    first = client_b.responses.create(
        model="echo", prompt={"id": prompt_id, "variables": {"topic": "owls"}}
    )
    assert echoed(first.output_text) == [
        ["system", "Answer in formal tone."],
        ["user", "Tell me about owls."],
    ]
    # Version 2 and the production label, made through replica A's admin API ...
    second = admin.post(
        f"/admin/prompts/{PROJECT}/{prompt_id}/versions",
        json={**VERSION_2, "labels": ["production"]},
    )
    assert second.json() == {"id": prompt_id, "version": 2, "labels": ["production"]}
    # ... are what replica B serves within a second (it had version 1 cached).
    deadline = time.monotonic() + 1.0
    while True:
        answer = client_b.responses.create(
            model="echo", prompt={"id": prompt_id, "variables": {"topic": "owls"}}
        )
        if echoed(answer.output_text) == [["user", "v2 about owls (formal)"]]:
            break
        assert time.monotonic() < deadline, "replica B still serves the old version"
        time.sleep(0.05)
    # A pinned version and a label.
    pinned = client_a.responses.create(
        model="echo", prompt={"id": prompt_id, "version": "1", "variables": {"topic": "x"}}
    )
    assert echoed(pinned.output_text)[0] == ["system", "Answer in formal tone."]
    moved = admin.put(
        f"/admin/prompts/{PROJECT}/{prompt_id}/labels/production", json={"version": 1}
    )
    assert moved.status_code == 200, moved.text
    described = admin.get(f"/admin/prompts/{PROJECT}/{prompt_id}").json()
    assert described["labels"] == {"production": 1}
    assert [v["version"] for v in described["versions"]] == [1, 2]
    assert prompt_id in admin.get(f"/admin/prompts/{PROJECT}").json()["data"]
    one = admin.get(f"/admin/prompts/{PROJECT}/{prompt_id}/versions/2").json()
    assert one["version"] == 2 and one["messages"] == VERSION_2["messages"]
    # Deleted: gone everywhere.
    assert admin.delete(f"/admin/prompts/{PROJECT}/{prompt_id}").status_code == 200
    deadline = time.monotonic() + 1.0
    while True:
        try:
            client_b.responses.create(model="echo", prompt={"id": prompt_id})
        except openai.NotFoundError:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client_a.close()
    client_b.close()


@pytest.mark.parametrize(
    ("version", "param", "says"),
    [
        (
            {"messages": [{"role": "user", "content": "{{ ''.__class__.__mro__ }}"}]},
            "messages[0].content",
            "'_'",
        ),
        ({"messages": [{"role": "user", "content": "{% if %}"}]}, "messages[0].content", "syntax"),
        (
            {"messages": [{"role": "user", "content": "x"}], "output_schema": {"type": "nonsense"}},
            "output_schema",
            "JSON Schema",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "input_schema": {"properties": 3}},
            "input_schema",
            "JSON Schema",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "parameters": {"api_key": "k"}},
            "parameters",
            "unknown",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, None, "role"),
        ({"messages": []}, "messages", "at least one"),
    ],
)
def test_a_bad_version_is_refused_and_nothing_is_stored(
    admin: httpx.Client, version: dict[str, Any], param: str | None, says: str
) -> None:
    prompt_id = new_id()
    answer = admin.post(f"/admin/prompts/{PROJECT}/{prompt_id}/versions", json=version)
    error = assert_openai_error(answer.content)
    assert answer.status_code == 400, answer.text
    assert error["param"] == param
    assert says in error["message"]
    assert admin.get(f"/admin/prompts/{PROJECT}/{prompt_id}").status_code == 404


def test_admin_needs_the_token(gateway: Service) -> None:
    answer = httpx.get(f"{gateway.url}/admin/prompts/{PROJECT}")
    assert answer.status_code == 401
    wrong = httpx.get(
        f"{gateway.url}/admin/prompts/{PROJECT}", headers={"authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert_no_leak(wrong.text)


def test_a_label_must_point_at_a_version(admin: httpx.Client) -> None:
    prompt_id = new_id()
    admin.post(f"/admin/prompts/{PROJECT}/{prompt_id}/versions", json=VERSION_1)
    answer = admin.put(f"/admin/prompts/{PROJECT}/{prompt_id}/labels/beta", json={"version": 9})
    assert answer.status_code == 404
    assert assert_openai_error(answer.content)["param"] == "version"


@pytest.mark.parametrize(
    ("prompt", "status", "param", "says"),
    [
        ({"id": "review", "variables": {}}, 400, "prompt.variables", "code"),
        ({"id": "review", "variables": {"code": 5}}, 400, "prompt.variables", "not of type"),
        (
            {"id": "review", "version": "2", "variables": {"code": "x"}},
            400,
            "prompt.variables",
            "language",
        ),
        (
            {"id": "review", "version": "9", "variables": {"code": "x"}},
            404,
            "prompt.version",
            "no version 9",
        ),
        (
            {"id": "review", "version": "staging", "variables": {"code": "x"}},
            404,
            "prompt.version",
            "no label",
        ),
        ({"id": "nope-prompt"}, 404, "prompt.id", "does not exist"),
        ({"id": "sneaky", "variables": {"name": "x"}}, 400, "prompt", "sandbox"),
        ({"id": "../etc"}, 404, "prompt.id", "prompt id"),
    ],
)
def test_bad_prompt_references_are_named(
    gateway: Service, prompt: dict[str, Any], status: int, param: str, says: str
) -> None:
    answer = httpx.post(
        f"{gateway.url}/{PROJECT}/chat/v1/responses",
        json={"model": "gpt-4o-mini", "prompt": prompt},
        timeout=10,
    )
    error = assert_openai_error(answer.content)
    assert answer.status_code == status, answer.text
    assert error["param"] == param
    assert says in error["message"], error
    assert "__class__" not in answer.text or "sandbox" in error["message"]


def test_a_manifest_prompt_through_the_sdk(gateway: Service) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/{PROJECT}/chat/v1", api_key="x", max_retries=0)
    response = client.responses.create(
        model="gpt-4o-mini",
        prompt={"id": "review", "variables": {"code": "print(1)"}},
        input="Be thorough.",
    )
    described = json.loads(response.output_text)
    assert described["messages"] == [
        {"role": "system", "content": "You review Python code."},
        {"role": "user", "content": "Review:\nprint(1)"},
        {"role": "user", "content": "Be thorough."},
    ]
    assert described["temperature"] == 0.1  # the version's parameters
    # Version 2 through its number; `developer` goes upstream as `system`.
    v2 = client.responses.create(
        model="gpt-4o-mini",
        prompt={"id": "review", "version": "2", "variables": {"language": "Go", "code": "x"}},
    )
    assert json.loads(v2.output_text)["messages"][0] == {
        "role": "system",
        "content": "Review Go code, v2.",
    }
    client.close()


def test_a_prompt_output_schema_is_validated_and_reasked(gateway: Service) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/{PROJECT}/scripted/v1", api_key="x", max_retries=0
    )
    raw = client.responses.with_raw_response.create(
        model="reask", prompt={"id": "extract", "variables": {"text": "Ada, 36"}}
    )
    assert json.loads(raw.parse().output_text) == {"name": "Ada", "age": 36}
    assert raw.headers["x-fd2-structured-attempts"] == "2"
    client.close()


def test_a_refused_version_takes_no_number(admin: httpx.Client) -> None:
    prompt_id = new_id()
    path = f"/admin/prompts/{PROJECT}/{prompt_id}/versions"
    bad = admin.post(path, json={"messages": [{"role": "user", "content": "{{ x.__dict__ }}"}]})
    assert bad.status_code == 400
    assert "new version" in bad.json()["error"]["message"]
    assert admin.post(path, json=VERSION_1).json()["version"] == 1
