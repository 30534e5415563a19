"""The usage fd2 works out itself: prompt counts before sending, the added `usage` chunk."""

from __future__ import annotations

import orjson

from fd2.sse import SseFramer
from fd2.tokens import count_chat, count_tokens
from inference_openai.usage import plan_usage, prompt_tokens, usage_event, wants_usage

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi 🙂"}]


def test_wants_usage_only_when_asked_exactly() -> None:
    assert wants_usage({"stream_options": {"include_usage": True}})
    assert not wants_usage({"stream_options": {"include_usage": False}})
    assert not wants_usage({"stream_options": {"include_usage": "yes"}})
    assert not wants_usage({"stream_options": None})
    assert not wants_usage({})


def test_prompt_tokens_of_chat_and_completions() -> None:
    assert prompt_tokens({"messages": MESSAGES}, "o200k_base", chat=True) == count_chat(MESSAGES)
    assert prompt_tokens({"messages": "oops"}, "o200k_base", chat=True) == 3
    assert prompt_tokens({"prompt": "a b c"}, "cl100k_base", chat=False) == count_tokens(
        "a b c", "cl100k_base"
    )


async def test_plan_picks_the_models_encoding() -> None:
    plan = await plan_usage({"model": "gpt-4-turbo", "messages": MESSAGES}, 100, chat=True)
    assert (plan.encoding, plan.model, plan.chat) == ("cl100k_base", "gpt-4-turbo", True)
    assert plan.prompt_tokens == count_chat(MESSAGES, "cl100k_base")
    big = await plan_usage({"messages": MESSAGES}, 10**6, chat=True)  # counted in a thread
    assert (big.encoding, big.prompt_tokens) == ("o200k_base", count_chat(MESSAGES))


async def test_usage_event_uses_the_streams_identity_and_text() -> None:
    framer = SseFramer(collect_text=True, hold_done=True)
    for content in ("Hel", "lo", " there"):
        chunk = {
            "id": "cc-1",
            "created": 9,
            "model": "gpt-4o",
            "choices": [{"delta": {"content": content}}],
        }
        framer.feed(b"data: " + orjson.dumps(chunk) + b"\n\n")
    framer.feed(b"data: [DONE]\n\n")
    plan = await plan_usage({"model": "gpt-4o", "messages": MESSAGES}, 100, chat=True)
    event = await usage_event(plan, framer, "rid-1")
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    chunk = orjson.loads(event[6:])
    completion = count_tokens("Hello there")
    assert chunk == {
        "id": "cc-1",
        "object": "chat.completion.chunk",
        "created": 9,
        "model": "gpt-4o",
        "choices": [],
        "usage": {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": plan.prompt_tokens + completion,
        },
    }
    assert framer.take_held() == b"data: [DONE]\n\n"
