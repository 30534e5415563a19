"""fd2 adds the `usage` chunk a client asked for when the upstream sends none (real fd2 under
Granian, the stand-in upstream, the official SDK). Expected counts come from OpenAI's tiktoken."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import openai

from .conftest import Service
from .support import chat_body, raw_request, sse_events

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "micro"))
from tiktoken_local import tiktoken_encoding

USER = {"role": "user", "content": "Count my tokens, please: ünïcode 🙂 too."}


def _tiktoken_chat_count(messages: list[dict[str, Any]]) -> int:
    """OpenAI's documented formula, with OpenAI's tiktoken."""
    encoding = tiktoken_encoding("o200k_base")  # unknown model names count with o200k_base
    total = 3
    for message in messages:
        total += 3 + sum(len(encoding.encode(value)) for value in message.values())
        total += 1 if "name" in message else 0
    return total


def test_usage_is_added_when_the_upstream_sends_none(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="no-usage",
        messages=[USER],
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    seen = (chunks[0].model_extra or {})["standin"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == len(tiktoken_encoding("o200k_base").encode(text))
    assert last.usage.prompt_tokens == _tiktoken_chat_count(seen["messages"])
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.id == chunks[0].id
    assert last.model == "no-usage"
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_usage_comes_before_done_on_the_wire(fd2: Service) -> None:
    body = chat_body("no-usage", stream=True, stream_options={"include_usage": True})
    response = raw_request(
        fd2.port,
        "POST",
        b"/acme/chat/v1/chat/completions",
        [(b"content-type", b"application/json")],
        body,
    )
    assert response.status == 200
    events = sse_events(response.body)
    assert events[-1] == b"[DONE]"
    assert b'"usage":{"prompt_tokens":' in events[-2]
    assert sum(b'"usage":{' in event for event in events) == 1


def test_nothing_is_added_unless_asked(client: openai.OpenAI) -> None:
    with client.chat.completions.create(model="no-usage", messages=[USER], stream=True) as stream:
        chunks = list(stream)
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_upstream_usage_is_relayed_not_replaced(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model="chunks-3", messages=[USER], stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    usages = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert len(usages) == 1
    assert usages[0].completion_tokens == 3  # the stand-in's own count (one per chunk)


def test_legacy_completions_get_usage_too(client: openai.OpenAI) -> None:
    prompt = "Say something about gateways."
    stream = client.completions.create(
        model="no-usage", prompt=prompt, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    last = chunks[-1]
    assert last.usage is not None
    encoding = tiktoken_encoding("o200k_base")
    assert last.usage.prompt_tokens == len(encoding.encode(prompt))
    assert last.usage.completion_tokens == len(encoding.encode(text))
