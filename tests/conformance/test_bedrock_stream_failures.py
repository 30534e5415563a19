"""Bedrock streams that fail part-way, through fd2 under Granian and the official `openai` SDK:
an exception message after some text, one before any, and a frame whose CRC does not match.
Each must end the client's stream with one OpenAI error (the SDK raises it) after the text
already sent. The replay stand-in serves the binary frames in 5-byte pieces."""

from __future__ import annotations

import base64
from typing import Any

import openai
import pytest

from e2e.conftest import Service
from modules.fd2_inference.bedrock_frames import event, exception
from modules.fd2_inference.bedrock_transcripts import STREAM_HEADERS, conversation, signed_request

from .conftest import PROJECT, Replay
from .scenarios import MAX_TOKENS, MODEL, messages

HELLO = [
    event("messageStart", {"role": "assistant"}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "The"}}),
    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " capital"}}),
]


def _corrupt(frame: bytes) -> bytes:
    broken = bytearray(frame)
    broken[-6] ^= 0x20  # a payload byte: the message CRC no longer matches
    return bytes(broken)


def _transcript(frames: list[bytes]) -> dict[str, Any]:
    return {
        "request": signed_request(conversation(), stream=True),
        "response": {
            "status": 200,
            "headers": STREAM_HEADERS,
            "body_b64": base64.b64encode(b"".join(frames)).decode(),
            "split_every": 5,
        },
    }


CASES = {
    "throttled-mid-stream": (
        [*HELLO, exception("throttlingException", "Too many tokens, please wait.")],
        "The capital",
        "Too many tokens",
    ),
    "validation-before-text": (
        [exception("validationException", "The model is not ready for streaming.")],
        "",
        "not ready",
    ),
    "corrupt-frame": (
        [
            *HELLO,
            _corrupt(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "!"}})),
        ],
        "The capital",
        "corrupt",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_failed_bedrock_stream_ends_with_one_error(
    case: str, conformance_fd2: Service, replayer: Replay
) -> None:
    frames, text, message = CASES[case]
    replayer.load(_transcript(frames))
    client = openai.OpenAI(
        base_url=f"{conformance_fd2.url}/{PROJECT}/bedrock/v1",
        api_key="unused",
        max_retries=0,
        timeout=30.0,
    )
    received = ""
    try:
        with pytest.raises(openai.APIError) as caught:
            stream = client.chat.completions.create(
                model=MODEL,
                messages=messages(),  # type: ignore[arg-type]
                max_tokens=MAX_TOKENS,
                stream=True,
            )
            for chunk in stream:
                for choice in chunk.choices:
                    received += choice.delta.content or ""
    finally:
        client.close()
    assert received == text
    assert message in str(caught.value.message)
    if not text:
        # Nothing was streamed yet: the failure is the answer's status, not an event.
        assert isinstance(caught.value, openai.BadRequestError), caught.value
    result = replayer.result()
    assert not result["mismatches"], result["mismatches"]
    assert result["requests"] == 1
