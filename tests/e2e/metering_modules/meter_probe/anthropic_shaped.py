"""A module whose provider reports usage as Anthropic does: `input_tokens`, `output_tokens`,
`cache_read_input_tokens`, `cache_creation_input_tokens` — in a whole answer, and in a stream's
`message_start` / `message_delta` events. The module converts it and reports it to the core.

It answers by itself: `output_tokens` words of text ("w0 w1 ..."), and it says the first
`cached` words of the prompt came from a prompt cache (both are request fields, so a test picks
the usage it expects).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import orjson

from fd2.metering import Meter, Usage
from fd2.module import Handler, Module, ModuleContext
from fd2.serving.errors import BadRequest
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send
from meter_probe.words import WordsMeter, completion_bound, prompt_words

PATH = "/v1/messages"


def usage_from_anthropic(usage: Mapping[str, int]) -> Usage:
    """Anthropic's input tokens exclude cache reads and writes; fd2's prompt includes them."""
    cached = usage.get("cache_read_input_tokens", 0)
    prompt = usage.get("input_tokens", 0) + cached + usage.get("cache_creation_input_tokens", 0)
    return Usage(
        prompt_tokens=prompt, completion_tokens=usage.get("output_tokens", 0), cached_tokens=cached
    )


class AnthropicShaped(Module):
    module_types: ClassVar[tuple[str, ...]] = ("anthropic_probe",)

    async def setup(self, context: ModuleContext) -> None:
        self._meter = WordsMeter()

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {PATH: {"POST": self._messages}}

    def meters(self) -> Mapping[str, Meter]:
        return {PATH: self._meter}

    async def _messages(self, request: Request, send: Send) -> None:
        payload = await request.json_object()
        words = prompt_words(payload)
        output = payload.get("output_tokens", 1)
        cached = payload.get("cached", 0)
        if not isinstance(output, int) or not isinstance(cached, int) or not 0 <= cached <= words:
            raise BadRequest("'output_tokens' and 'cached' must be small integers.")
        output = min(output, completion_bound(payload))
        text = " ".join(f"w{index}" for index in range(output))
        start = {"input_tokens": words - cached, "cache_read_input_tokens": cached}
        if payload.get("stream") is True:
            await self._stream(send, text, start, output)
        else:
            usage = {**start, "output_tokens": output}
            body = {"type": "message", "content": [{"type": "text", "text": text}], "usage": usage}
            await send_bytes(send, 200, orjson.dumps(body))
        # Once the answer has ended: the core settles the request's tokens with this.
        request.report_usage(usage_from_anthropic({**start, "output_tokens": output}))

    async def _stream(self, send: Send, text: str, start: dict[str, int], output: int) -> None:
        events = [
            ("message_start", {"type": "message_start", "message": {"usage": start}}),
            ("content_block_delta", {"type": "content_block_delta", "delta": {"text": text}}),
            ("message_delta", {"type": "message_delta", "usage": {"output_tokens": output}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for name, data in events:
            event = b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
