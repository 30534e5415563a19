"""The inference module's meters: OpenAI's counting rules for the estimate, OpenAI's usage object
converted to fd2's Usage."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fd2.metering import Cost, Usage
from fd2.serving.errors import BadRequest
from fd2.serving.request import Request
from fd2.tokens import count_tokens
from fd2_inference.metering import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    OpenAIMeter,
    count_chat,
    prompt_tokens,
    usage_from_json,
    usage_from_stream,
)
from fd2_inference.transforms import (
    Defaults,
    prepare_chat,
    prepare_completion,
    prepare_embedding,
)

HELLO = [{"role": "user", "content": "hello world"}]
DEFAULTS = Defaults(model="gpt-4o-mini", max_tokens=300, system_prompt="Be brief.")
PREPARE = {CHAT: prepare_chat, COMPLETIONS: prepare_completion, EMBEDDINGS: prepare_embedding}


def request(body: dict[str, Any] | bytes, method: str = "POST") -> Request:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(
        {"method": method, "headers": []},
        receive,
        request_id="r",
        project="p",
        module="m",
        environment="development",
        path="/v1/chat/completions",
        content_length=len(raw),
        max_body=1 << 24,
    )


def meter(kind: str, defaults: Defaults = DEFAULTS, bound: int | None = 300) -> OpenAIMeter:
    return OpenAIMeter(kind, lambda body: PREPARE[kind](body, defaults), bound)


def test_prompt_tokens_follow_openais_rules() -> None:
    # "hello world" is 2 tokens in both encodings; a chat message costs 3 more and the reply
    # priming 3 (OpenAI's documented overheads).
    assert prompt_tokens({"messages": HELLO}, CHAT, "o200k_base") == 9
    assert prompt_tokens({"messages": HELLO}, CHAT, "cl100k_base") == 9
    parts = [{"type": "text", "text": "hello world"}, {"type": "image_url"}]
    assert (
        prompt_tokens({"messages": [{"role": "user", "content": parts}]}, CHAT, "o200k_base") == 9
    )
    assert prompt_tokens({"input": ["hello world"] * 2}, EMBEDDINGS, "o200k_base") == 4
    assert prompt_tokens({"prompt": [1, 2, 3]}, COMPLETIONS, "o200k_base") == 3
    assert prompt_tokens({"prompt": [[1, 2], [3]]}, COMPLETIONS, "o200k_base") == 3
    assert prompt_tokens({"input": [[1, 2], [3]]}, EMBEDDINGS, "o200k_base") == 3
    assert prompt_tokens({"prompt": "a b c"}, COMPLETIONS, "cl100k_base") == count_tokens(
        "a b c", "cl100k_base"
    )
    assert prompt_tokens({}, COMPLETIONS, "o200k_base") == 0


async def test_the_estimate_counts_what_goes_upstream() -> None:
    # The module's system prompt is added to the request, so it is part of the prompt.
    cost = await meter(CHAT).estimate(request({"messages": HELLO}))
    sent = [{"role": "system", "content": "Be brief."}, *HELLO]
    assert cost == Cost(model="gpt-4o-mini", prompt_tokens=count_chat(sent), completion_bound=300)
    own = await meter(CHAT).estimate(request({"model": "gpt-4", "messages": HELLO, "n": 1}))
    assert own.model == "gpt-4"
    assert own.prompt_tokens == count_chat(sent, "cl100k_base")


@pytest.mark.parametrize(
    ("fields", "bound"),
    [
        ({}, 300),  # the manifest's max_tokens (applied by the module's defaults)
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 40, "max_tokens": 50}, 40),
        ({"max_tokens": None}, 300),  # the client's null: the configured bound
        ({"max_tokens": True}, 300),
        ({"max_tokens": -1}, 300),
    ],
)
async def test_the_completion_bound(fields: dict[str, Any], bound: int) -> None:
    cost = await meter(CHAT).estimate(request({"messages": HELLO, **fields}))
    assert cost.completion_bound == bound


async def test_without_a_configured_bound_1024_is_reserved() -> None:
    plain = Defaults(model="m")
    cost = await meter(CHAT, plain, None).estimate(request({"messages": HELLO}))
    assert cost.completion_bound == 1024


async def test_embeddings_generate_nothing() -> None:
    cost = await meter(EMBEDDINGS).estimate(request({"input": "hello world", "max_tokens": 9}))
    assert (cost.prompt_tokens, cost.completion_bound) == (2, 0)


async def test_a_large_prompt_is_counted_in_a_thread() -> None:
    # "word", then " word" 39,999 times, then " ": 40,001 tokens, a body over 64 KB.
    cost = await meter(COMPLETIONS).estimate(request({"prompt": "word " * 40_000}))
    assert cost.prompt_tokens == 40_001


async def test_the_model_is_the_one_sent_without_counting() -> None:
    assert await meter(CHAT).model(request({"messages": HELLO})) == "gpt-4o-mini"
    assert await meter(CHAT).model(request({"model": "gpt-4o", "messages": HELLO})) == "gpt-4o"
    with pytest.raises(BadRequest):  # an invalid request is refused as the handler would
        await meter(CHAT).model(request({"model": "gpt-4o"}))


async def test_the_estimate_is_made_once_per_request() -> None:
    calls = 0
    inner = meter(CHAT)

    class Counting:
        async def model(self, request: Request) -> str | None:
            return await inner.model(request)

        async def estimate(self, request: Request) -> Cost:
            nonlocal calls
            calls += 1
            return await inner.estimate(request)

    one = request({"messages": HELLO})
    first = await one.estimate(Counting())
    assert await one.estimate(Counting()) is first
    assert one.cost is first and calls == 1


@pytest.mark.parametrize(
    ("raw", "usage"),
    [
        (
            b'{"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}',
            Usage(prompt_tokens=7, completion_tokens=5),
        ),
        (
            b'{"prompt_tokens": 7, "completion_tokens": 5, '
            b'"prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}}',
            Usage(prompt_tokens=7, completion_tokens=5, cached_tokens=4),
        ),
        (b'{"prompt_tokens": 8, "total_tokens": 8}', Usage(prompt_tokens=8)),  # embeddings
        (b'{"total_tokens": 9}', Usage(prompt_tokens=9)),
        (b'{"prompt_tokens": 7, "prompt_tokens_details": null}', Usage(prompt_tokens=7)),
        (b"null", None),
        (b"{}", None),
        (b'{"prompt_tokens": -1}', None),
        (b'{"prompt_tokens": "many"}', None),
        (b"[1]", None),
    ],
)
def test_openai_usage_objects(raw: bytes, usage: Usage | None) -> None:
    assert usage_from_json(raw) == usage


def test_the_framers_reading_of_a_stream() -> None:
    assert usage_from_stream((3, 2, 5)) == Usage(prompt_tokens=3, completion_tokens=2)
