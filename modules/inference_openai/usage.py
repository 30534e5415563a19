"""A request's usage: reported to the core (fd2.metering) from what the answer carried, and for a
stream the `usage` chunk OpenAI would have sent when the client asked for one
(`stream_options.include_usage`) and the upstream sent none.

Nothing is counted twice: the prompt count is the request's estimate (`Request.estimate`, made
once and shared with the core's limits), and a stream's own `usage` event is read by the native
framer as it relays, never by a second scan. When the upstream reports nothing, the completion
is counted from the text the stream generated (content, refusals, tool-call names and
arguments). All of it only when someone reads it — the client asked for usage, or a step
settles with it (`request.metered`): a request nobody meters costs no work here. The count
matches what OpenAI bills for plain text answers and is a close estimate for tool calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from fd2.metering import Meter, Usage
from fd2.request import Request
from fd2.sse import SseFramer
from fd2.tokens import count_tokens, encoding_for_model
from inference_openai.metering import THREAD_FROM_BYTES, usage_from_json, usage_from_stream


class UsageReport:
    """One request's usage reporting; `emit` and `count` are decided before the call."""

    __slots__ = ("chat", "count", "emit", "model", "prompt_tokens", "request")

    def __init__(
        self,
        request: Request,
        *,
        emit: bool = False,
        count: bool = False,
        prompt_tokens: int = 0,
        model: str = "",
        chat: bool = True,
    ) -> None:
        self.request = request
        self.emit = emit
        """Write a `usage` chunk when the upstream sends none (the client asked for usage)."""
        self.count = count
        """Count the completion when the upstream reports no usage (the framer gathers text)."""
        self.prompt_tokens = prompt_tokens
        self.model = model
        self.chat = chat

    def answer(self, usage: bytes | None) -> None:
        """Reports the `usage` member of a whole JSON answer (None: it had none)."""
        if usage is not None:
            found = usage_from_json(usage)
            if found is not None:
                self.request.report_usage(found)

    async def stream_end(self, framer: SseFramer, request_id: str) -> bytes:
        """Reports a finished stream's usage; returns the `usage` event fd2 adds (or b"")."""
        reported = framer.usage
        if reported is not None:
            self.request.report_usage(usage_from_stream(reported))
            return b""
        if not self.count:
            return b""
        text = framer.text
        encoding = encoding_for_model(self.model)
        if len(text) >= THREAD_FROM_BYTES:
            completion = await asyncio.to_thread(count_tokens, text, encoding)
        else:
            completion = count_tokens(text, encoding)
        usage = Usage(prompt_tokens=self.prompt_tokens, completion_tokens=completion)
        self.request.report_usage(usage)
        if not self.emit or framer.error is not None:
            return b""
        return self._event(usage, framer, request_id)

    def _event(self, usage: Usage, framer: SseFramer, request_id: str) -> bytes:
        prefix, kind = (
            ("chatcmpl", "chat.completion.chunk") if self.chat else ("cmpl", "text_completion")
        )
        chunk = {
            "id": framer.response_id or f"{prefix}-{request_id}",
            "object": kind,
            "created": framer.created if framer.created is not None else int(time.time()),
            "model": framer.model or self.model,
            "choices": [],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def wants_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


async def stream_report(
    request: Request, meter: Meter, payload: dict[str, Any], *, chat: bool
) -> UsageReport | None:
    """How a stream reports usage: None when neither the client nor a step reads it. When it may
    have to count the completion itself it takes the prompt count from the request's estimate
    (made by the limits step already, or now, once)."""
    emit = wants_usage(payload)
    if not (emit or request.metered):
        return None
    cost = await request.estimate(meter)
    return UsageReport(
        request,
        emit=emit,
        count=True,
        prompt_tokens=cost.prompt_tokens,
        model=cost.model or "",
        chat=chat,
    )
