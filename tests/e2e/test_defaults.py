"""Manifest defaults fill only what the request leaves out; upstream credentials come from fd2."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai

from .support import ACME_PROMPT

USER = {"role": "user", "content": "What is the capital of France?"}


def _seen(answer: Any) -> dict[str, Any]:
    return dict(json.loads(answer.choices[0].message.content))


def test_defaults_fill_an_empty_request(client: openai.OpenAI) -> None:
    seen = _seen(client.chat.completions.create(model="standin-echo", messages=[USER]))
    assert seen["messages"] == [{"role": "system", "content": ACME_PROMPT}, USER]
    assert seen["max_tokens"] == 1024
    assert seen["temperature"] == 0.2
    assert seen["top_p"] == 0.9
    assert seen["model"] == "standin-echo"


def test_upstream_gets_the_manifest_key_not_the_client_key(client: openai.OpenAI) -> None:
    seen = _seen(client.chat.completions.create(model="standin-echo", messages=[USER]))
    assert seen["authorization"] == "Bearer test-acme-key"


def test_existing_system_message_is_kept_alone(client: openai.OpenAI) -> None:
    system = {"role": "system", "content": "Answer in French."}
    seen = _seen(client.chat.completions.create(model="standin-echo", messages=[system, USER]))
    assert seen["messages"] == [system, USER]


def test_system_message_later_in_the_conversation_also_counts(client: openai.OpenAI) -> None:
    system = {"role": "system", "content": "Be brief."}
    messages = [USER, {"role": "assistant", "content": "Paris."}, system, USER]
    seen = _seen(client.chat.completions.create(model="standin-echo", messages=messages))
    assert seen["messages"] == messages


def test_request_values_win(client: openai.OpenAI) -> None:
    seen = _seen(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[USER],
            max_tokens=7,
            temperature=0.9,
            top_p=0.5,
        )
    )
    assert seen["model"] == "gpt-4o"
    assert seen["max_tokens"] == 7
    assert seen["temperature"] == 0.9
    assert seen["top_p"] == 0.5


def test_falsy_request_values_still_win(client: openai.OpenAI) -> None:
    seen = _seen(
        client.chat.completions.create(
            model="standin-echo", messages=[USER], temperature=0, top_p=0.0
        )
    )
    assert seen["temperature"] == 0
    assert seen["top_p"] == 0


def test_model_defaults_when_the_body_has_none(http: httpx.Client) -> None:
    response = http.post("/acme/chat/v1/chat/completions", json={"messages": [USER]})
    assert response.status_code == 200, response.text
    seen = json.loads(response.json()["choices"][0]["message"]["content"])
    assert seen["model"] == "gpt-4o-mini"
    assert seen["messages"][0] == {"role": "system", "content": ACME_PROMPT}


def test_client_authorization_is_not_forwarded(http: httpx.Client) -> None:
    response = http.post(
        "/acme/chat/v1/chat/completions",
        json={"model": "standin-echo", "messages": [USER]},
        headers={"Authorization": "Bearer client-secret-123"},
    )
    assert response.status_code == 200, response.text
    assert "client-secret-123" not in response.text
    seen = json.loads(response.json()["choices"][0]["message"]["content"])
    assert seen["authorization"] == "Bearer test-acme-key"


def test_billing_assistant_single_module_manifest(
    make_client: Callable[..., openai.OpenAI],
) -> None:
    sdk = make_client("billing/assistant")
    seen = _seen(sdk.chat.completions.create(model="standin-echo", messages=[USER]))
    assert seen["authorization"] == "Bearer test-billing-key"
    assert seen["messages"] == [USER]
    assert seen["path"] == "/v1/chat/completions"
