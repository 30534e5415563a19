"""Usage found in answers on their way out, and the prompt estimate."""

import orjson

from fd2.limits.prompt_tokens import count_prompt_tokens
from fd2.limits.usage import UsageMeter


async def run(messages):
    sent = []

    async def send(message):
        sent.append(message)

    meter = UsageMeter(send, [(b"x-ratelimit-limit-tokens", b"100")])
    for message in messages:
        await meter(message)
    return meter, sent


def start(content_type=b"application/json", status=200):
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type)],
    }


def body(data, more=False):
    return {"type": "http.response.body", "body": data, "more_body": more}


async def test_json_usage_and_headers():
    answer = orjson.dumps(
        {"usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}
    )
    meter, sent = await run([start(), body(answer)])
    assert meter.tokens(99) == 12
    assert (b"x-ratelimit-limit-tokens", b"100") in sent[0]["headers"]


async def test_stream_usage_event_wins_over_nulls():
    events = [
        b'data: {"choices":[{"delta":{"content":"1"}}],"usage":null}\n\n',
        b'data: {"choices":[{"delta":{"content":"2"}}],"usage":null}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'
        b"\n\ndata: [DONE]\n\n",
    ]
    meter, _ = await run([start(b"text/event-stream; charset=utf-8"), *map(body, events)])
    assert meter.tokens(99) == 5


async def test_a_stream_without_usage_counts_its_events():
    events = [b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'] * 4 + [b"data: [DONE]\n\n"]
    meter, _ = await run([start(b"text/event-stream"), *map(body, events)])
    assert meter.tokens(10) == 14


async def test_failed_calls_use_nothing():
    meter, _ = await run([start(status=500), body(b'{"error":{}}')])
    assert meter.tokens(10) == 0


async def test_prompt_tokens_are_counted_with_the_models_encoding():
    # "hello world" is 2 tokens in o200k_base and cl100k_base; "user" is 1. A chat message costs
    # 3 more, and the reply priming 3 (OpenAI's documented overheads).
    hello = [{"role": "user", "content": "hello world"}]
    assert await count_prompt_tokens({"model": "gpt-4o", "messages": hello}) == 9
    assert await count_prompt_tokens({"model": "gpt-4", "messages": hello}) == 9
    parts = [{"type": "text", "text": "hello world"}, {"type": "image_url"}]
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": parts}]}
    assert await count_prompt_tokens(chat) == 9
    assert await count_prompt_tokens({"input": ["hello world", "hello world"]}) == 4
    assert await count_prompt_tokens({"prompt": [1, 2, 3]}) == 3
    assert await count_prompt_tokens({"prompt": [[1, 2], [3]]}) == 3
    assert await count_prompt_tokens({}) == 0
    # A large prompt is counted in a thread: "word", then " word" 39,999 times, then " ".
    assert await count_prompt_tokens({"model": "gpt-4o", "prompt": "word " * 40_000}) == 40_001
