"""An Anthropic stream whose text and error event arrive in one read (TCP coalesces small
writes): the client gets the text, then the error (fd2_inference.translated.translated_chunks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import orjson
import pytest

from fd2_inference.framing import SseDeframer
from fd2_inference.providers.anthropic_stream import AnthropicStream
from fd2_inference.providers.base import ProviderStreamError
from fd2_inference.translated import translated_chunks


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


START = _event(
    "message_start",
    {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 3}},
    },
)
BLOCK = _event(
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
)
TEXT = _event(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
)
ERROR = _event(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)


class _Content:
    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads

    async def iter_any(self) -> AsyncIterator[bytes]:
        for read in self._reads:
            yield read


class _Response:
    def __init__(self, reads: list[bytes]) -> None:
        self.content = _Content(reads)


@pytest.mark.parametrize("reads", [[START + BLOCK + TEXT + ERROR], [START, BLOCK + TEXT + ERROR]])
async def test_text_before_an_error_in_the_same_read_is_delivered(reads: list[bytes]) -> None:
    response = cast(aiohttp.ClientResponse, _Response(reads))
    translator = AnthropicStream(model="m", include_usage=False)
    received: list[Any] = []
    with pytest.raises(ProviderStreamError) as failed:
        async for chunks in translated_chunks(response, SseDeframer(), translator):
            received.extend(chunks)
    assert failed.value.failure.status == 503
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in received)
    assert text == "Hi"
