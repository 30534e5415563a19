"""Independent review of streamed redaction (issue 15, point 5) with the official SDKs over real
processes: Anthropic's messages stream through fd2 (the upstream streams OpenAI chunks of 2 or 3
characters, fd2 translates them) never carries a card number or an address split across
deltas, and the SDK's assembled text is the masked text."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from ..privacy.test_privacy import CARD, EMAIL, Stack


@pytest.mark.parametrize("model", ["split-2", "split-3"])
def test_an_anthropic_stream_never_carries_a_split_value(stack: Stack, model: str) -> None:
    text = f"My card is {CARD} and my mail {EMAIL}, thanks"
    client = anthropic.Anthropic(
        base_url=f"{stack.fd2.url}/privacy/answers", api_key="unused", max_retries=0
    )
    with client.messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": text}]
    ) as stream:
        assembled = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert assembled == "My card is [CARD] and my mail [EMAIL], thanks"
    assert final.content[0].type == "text"
    assert final.content[0].text == assembled
    body = {
        "model": model,
        "max_tokens": 200,
        "stream": True,
        "messages": [{"role": "user", "content": text}],
    }
    raw = httpx.post(f"{stack.fd2.url}/privacy/answers/v1/messages", json=body, timeout=30)
    assert raw.status_code == 200
    digits = "".join(ch for ch in raw.text if ch.isdigit())
    assert "41111111" not in digits
    assert EMAIL.split("@")[0] not in raw.text


def test_a_responses_stream_never_carries_a_split_value(stack: Stack) -> None:
    import openai

    text = f"My card is {CARD} and my mail {EMAIL}, thanks"
    client = openai.OpenAI(
        base_url=f"{stack.fd2.url}/privacy/answers/v1", api_key="unused", max_retries=0
    )
    with client.responses.stream(model="split-3", input=text) as stream:
        deltas = "".join(
            event.delta for event in stream if event.type == "response.output_text.delta"
        )
        final = stream.get_final_response()
    assert deltas == "My card is [CARD] and my mail [EMAIL], thanks"
    assert final.output_text == deltas
