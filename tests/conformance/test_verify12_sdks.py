"""The official SDKs as users use them, over every provider (issue 12, verified): the `openai`
SDK sync and async (streams with usage, `parse` with a pydantic model, a forced tool, `n`,
`stop`), the `anthropic` SDK on `/v1/messages` (system as blocks, `stop_sequences`, `metadata`,
`messages.stream` async, a forced tool, `count_tokens` which fd2 does not serve), and the
headers of an error reaching the SDK's exception. fd2 under Granian, the replay stand-in as the
provider (answers from the conformance transcripts; what fd2 sent is checked by the table)."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pydantic
import pytest

from e2e.conftest import Service

from .conftest import PROJECT, Replay
from .scenarios import (
    ANSWER,
    COMPLETION_TOKENS,
    MAX_TOKENS,
    MODEL,
    PROMPT_TOKENS,
    QUESTION,
    SYSTEM,
    WEATHER_TOOL,
    messages,
)
from .verify12_support import (
    PROVIDERS,
    assert_no_secret,
    base_url,
    transcript,
    verify_fd2,  # noqa: F401  # the fixture
)

RATE_HEADERS = [
    ["retry-after", "7"],
    ["x-ratelimit-remaining-requests", "0"],
    ["x-ratelimit-reset-requests", "7s"],
    ["anthropic-ratelimit-requests-remaining", "0"],
]


class capital(pydantic.BaseModel):  # the schema name the transcripts answer
    model_config = pydantic.ConfigDict(extra="forbid")
    country: str
    capital: str


def _openai(fd2: Service, provider: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url(fd2, provider), api_key="x", max_retries=0, timeout=30)


def _async_openai(fd2: Service, provider: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=base_url(fd2, provider), api_key="x", max_retries=0, timeout=30
    )


def _anthropic(fd2: Service, provider: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{fd2.url}/{PROJECT}/{provider}", api_key="x", max_retries=0, timeout=30
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_async_stream_with_usage(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    replayer.load(transcript(provider, "stream"))

    async def run() -> list[Any]:
        client = _async_openai(verify_fd2, provider)
        async with client:
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=messages(),  # type: ignore[arg-type]
                max_tokens=MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},
            )
            return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == PROMPT_TOKENS
    assert chunks[-1].usage.completion_tokens == COMPLETION_TOKENS
    assert sum(1 for c in chunks if c.usage is not None) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_parse_with_a_pydantic_model(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    replayer.load(transcript(provider, "json_schema"))
    with _openai(verify_fd2, provider) as client:
        completion = client.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=MAX_TOKENS,
            response_format=capital,
        )
    parsed = completion.choices[0].message.parsed
    assert parsed == capital(country="France", capital="Paris")
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_forced_tool_stop_and_n(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    replayer.load(transcript(provider, "tool_call"))
    with _openai(verify_fd2, provider) as client:
        completion = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            max_tokens=MAX_TOKENS,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stop=["\n\n", "END"],
        )
        calls = completion.choices[0].message.tool_calls
        assert calls and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
        assert calls[0].function.arguments.replace(" ", "") == '{"location":"Paris"}'  # type: ignore[union-attr]
        replayer.load(transcript(provider, "plain"))
        try:
            answer = client.chat.completions.create(
                model=MODEL,
                messages=messages(),  # type: ignore[arg-type]
                max_tokens=MAX_TOKENS,
                n=2,
            )
        except openai.BadRequestError as refused:
            assert refused.response.json()["error"]["param"] == "n"
            assert refused.response.headers.get("x-request-id")
        else:
            assert answer.choices[0].message.content == ANSWER


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_rate_limit_headers_reach_both_sdks(
    provider: str,
    stream: bool,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    loaded = transcript(provider, "error_429")
    loaded["response"]["headers"] = [
        *[h for h in loaded["response"].get("headers", []) if "ratelimit" not in h[0].lower()],
        *[h for h in RATE_HEADERS if h[0] != "retry-after"],
    ]
    if not any(h[0].lower() == "retry-after" for h in loaded["response"]["headers"]):
        loaded["response"]["headers"].append(["retry-after", "7"])
    replayer.load(loaded)
    with _openai(verify_fd2, provider) as client, pytest.raises(openai.RateLimitError) as caught:
        if stream:
            list(
                client.chat.completions.create(
                    model=MODEL,
                    messages=messages(),  # type: ignore[arg-type]
                    max_tokens=MAX_TOKENS,
                    stream=True,
                )
            )
        else:
            client.chat.completions.create(
                model=MODEL,
                messages=messages(),  # type: ignore[arg-type]
                max_tokens=MAX_TOKENS,
            )
    headers = caught.value.response.headers
    assert headers.get("retry-after") == "7"
    assert headers.get("x-ratelimit-remaining-requests") == "0", dict(headers)
    assert headers.get("x-ratelimit-reset-requests") == "7s"
    if provider != "openai":  # the passthrough relays OpenAI's own (x-ratelimit-*) only
        assert headers.get("anthropic-ratelimit-requests-remaining") == "0", dict(headers)
    assert headers.get("x-request-id")
    assert_no_secret(caught.value.response.content)
    replayer.load(loaded)
    with _anthropic(verify_fd2, provider) as sdk, pytest.raises(anthropic.RateLimitError) as seen:
        sdk.messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": QUESTION}],
            system=SYSTEM,
        )
    headers = seen.value.response.headers
    assert headers.get("retry-after") == "7"
    assert headers.get("x-ratelimit-remaining-requests") == "0"
    assert seen.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_system_blocks_stop_sequences_metadata(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    replayer.load(transcript(provider, "plain"))
    with _anthropic(verify_fd2, provider) as client:
        message = client.messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            system=[
                {"type": "text", "text": "You are a terse"},
                {"type": "text", "text": "assistant.", "cache_control": {"type": "ephemeral"}},
            ],
            messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
            stop_sequences=["\n\nHuman:"],
            metadata={"user_id": "user-42"},
        )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text == ANSWER  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_async_stream_helper(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    replayer.load(transcript(provider, "stream"))

    async def run() -> tuple[str, Any]:
        client = anthropic.AsyncAnthropic(
            base_url=f"{verify_fd2.url}/{PROJECT}/{provider}", api_key="x", max_retries=0
        )
        async with (
            client,
            client.messages.stream(
                model=MODEL,
                max_tokens=MAX_TOKENS,
                system=SYSTEM,
                messages=[{"role": "user", "content": QUESTION}],
            ) as stream,
        ):
            text = "".join([piece async for piece in stream.text_stream])
            return text, await stream.get_final_message()

    text, final = asyncio.run(run())
    assert text == ANSWER
    assert final.content[0].text == ANSWER
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == COMPLETION_TOKENS


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_forced_tool(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    replayer.load(transcript(provider, "tool_call"))
    function = WEATHER_TOOL["function"]
    with _anthropic(verify_fd2, provider) as client:
        message = client.messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=[
                {
                    "name": function["name"],
                    "description": function["description"],
                    "input_schema": function["parameters"],
                }
            ],
            tool_choice={"type": "tool", "name": "get_weather"},
        )
    uses = [block for block in message.content if block.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"location": "Paris"})]  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_anthropic_count_tokens_is_a_clean_404(
    provider: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    replayer.load(None)
    with _anthropic(verify_fd2, provider) as client, pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    response = nf.value.response
    assert response.status_code == 404
    assert response.headers.get("x-request-id")
    assert response.headers.get("content-type", "").startswith("application/json")
    assert b"Traceback" not in response.content
    assert replayer.result()["requests"] == 0


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "openai"])
@pytest.mark.parametrize("scenario", ["error_429"])
def test_headers_quoting_the_key_are_scrubbed(
    provider: str,
    scenario: str,
    verify_fd2: Service,  # noqa: F811
    replayer: Replay,
) -> None:
    """A translated provider's error that sends the key back in a passed-through header (rate
    limits). Not yet true of success answers and of the passthrough's errors, whose
    `relayed_headers` are not scrubbed (reported to the lead)."""
    from .verify12_support import secrets_of

    loaded = transcript(provider, scenario)
    key = secrets_of(provider)[0]
    loaded["response"]["headers"] = [
        *loaded["response"].get("headers", []),
        ["x-ratelimit-note", f"key {key}"],
        ["anthropic-ratelimit-tokens-reset", key],
    ]
    replayer.load(loaded)
    import httpx

    response = httpx.post(
        f"{base_url(verify_fd2, provider)}/chat/completions",
        json={"model": MODEL, "messages": messages(), "max_tokens": MAX_TOKENS},
        timeout=30,
    )
    for name, value in response.headers.items():
        assert key not in value, f"header {name} carries the key"
