"""How OpenAI requests are metered (the fd2.metering contract): every OpenAI rule lives here.

Estimate, before the call: the prompt counted with the model's encoding through fd2.tokens (chat
`messages` by OpenAI's documented rule, below; completions' `prompt`, embeddings' `input`;
pre-tokenised prompts by their length), and the completion bound — the request's
`max_completion_tokens`, else `max_tokens`, else the manifest's `max_tokens`, else 1024;
embeddings generate nothing. The request counted is the one that goes upstream (the module's
defaults applied: its model, its system prompt), so the estimate is the prompt the upstream sees.

Chat messages are counted the way OpenAI documents for its chat models: 3 tokens per message,
plus the tokens of each of its string values (`role`, `content`, `name`, ...), 1 more when it has
a `name`, and 3 for priming the reply. Content given as parts counts the text of its text parts
(images and audio are not counted); other structured values (`tool_calls`, ...) count the tokens
of their compact JSON, an estimate close to what the upstream sees.

Usage, after the call: OpenAI's `usage` object (`prompt_tokens`, `completion_tokens`,
`prompt_tokens_details.cached_tokens`), converted to fd2's `Usage` and reported on the request —
from the answer as the module read it, or for a stream from the native framer's reading of its
`usage` event (never a second scan). When a stream carries none, the completion is counted from
the text it generated (content, refusals, tool-call names and arguments: what OpenAI bills for
plain text, a close estimate for tool calls) with the prompt count of the estimate, so nothing
is counted twice; and a client that asked for usage (`stream_options.include_usage`) gets the
chunk OpenAI would have sent. All of it only when someone reads it — the client asked, or a step
settles with it (`request.metered`): a request nobody meters costs no work here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final

import msgspec
import orjson

from fd2.metering import Cost, Meter, Usage
from fd2.serving.errors import BadRequest
from fd2.serving.request import Request
from fd2.serving.sse import SseFramer
from fd2.tokens import count_prompt, count_tokens, count_tokens_all, encoding_for_model
from fd2_inference.transforms import Prepared

DEFAULT_COMPLETION_BOUND: Final = 1024
THREAD_FROM_BYTES: Final = 64 * 1024
"""Counting a prompt from a body this large (or a completion this long) runs in a worker thread
(the native counter releases the GIL), so it never stalls the event loop; below it a thread hop
costs more than counting. One threshold for every count the module makes."""

CHAT, COMPLETIONS, EMBEDDINGS = "chat", "completions", "embeddings"

Prepare = Callable[[dict[str, Any]], Prepared]


class OpenAIMeter:
    """The meter of one endpoint (`kind`: chat, completions or embeddings)."""

    __slots__ = ("_bound", "_kind", "_prepare")

    def __init__(self, kind: str, prepare: Prepare, default_bound: int | None) -> None:
        self._kind = kind
        self._prepare = prepare
        self._bound = 0 if kind == EMBEDDINGS else default_bound or DEFAULT_COMPLETION_BOUND

    async def model(self, request: Request) -> str | None:
        return _model(self._prepare(await request.json_object()).payload)

    async def estimate(self, request: Request) -> Cost:
        size = len(await request.body())
        payload = self._prepare(await request.json_object()).payload
        model = _model(payload)
        encoding = encoding_for_model(model or "")
        if size >= THREAD_FROM_BYTES:
            prompt = await asyncio.to_thread(prompt_tokens, payload, self._kind, encoding)
        else:
            prompt = prompt_tokens(payload, self._kind, encoding)
        return Cost(model=model, prompt_tokens=prompt, completion_bound=self._completion(payload))

    def _completion(self, payload: dict[str, Any]) -> int:
        if self._kind == EMBEDDINGS:
            return 0
        bound = payload.get("max_completion_tokens", payload.get("max_tokens"))
        if isinstance(bound, int) and not isinstance(bound, bool) and bound >= 0:
            return bound
        return self._bound


def prompt_tokens(payload: dict[str, Any], kind: str, encoding: str) -> int:
    """Prompt tokens of a request as OpenAI counts them (text parts only; images not counted)."""
    if kind == CHAT:
        messages = payload.get("messages")
        return count_chat(messages if isinstance(messages, list) else [], encoding)
    text = payload.get("input" if kind == EMBEDDINGS else "prompt")
    if isinstance(text, list) and text and all(isinstance(item, int) for item in text):
        return len(text)  # one pre-tokenised prompt
    if (
        isinstance(text, list)
        and text
        and all(isinstance(item, list) and all(isinstance(t, int) for t in item) for item in text)
    ):
        return sum(len(item) for item in text)  # a batch of pre-tokenised prompts
    return count_prompt(text, encoding)


TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_NAME: Final = 1
TOKENS_TO_PRIME_REPLY: Final = 3


def chat_texts(messages: Sequence[object]) -> tuple[list[str], int]:
    """The texts of `messages` that are counted, and the fixed overhead tokens around them."""
    texts: list[str] = []
    overhead = TOKENS_TO_PRIME_REPLY
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        overhead += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "name":
                overhead += TOKENS_PER_NAME
            _collect(value, texts)
    return texts, overhead


def _collect(value: object, texts: list[str]) -> None:
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, list) and all(isinstance(part, Mapping) for part in value):
        for part in value:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") not in {"image_url", "input_audio", "file"}:
                texts.append(_compact_json(part))
    elif value is not None:
        texts.append(_compact_json(value))


def _compact_json(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # orjson reads deeper nesting (1,024 levels) than it writes (255): such a message cannot
        # be counted, nor forwarded as it is.
        raise BadRequest(
            "A message is nested too deeply to be counted.", param="messages"
        ) from None


def count_chat(messages: Sequence[object], encoding: str = "o200k_base") -> int:
    """Prompt tokens of a chat/completions `messages` list (see the module doc)."""
    texts, overhead = chat_texts(messages)
    return overhead + count_tokens_all(texts, encoding)


def _model(payload: dict[str, Any]) -> str | None:
    model = payload.get("model")
    return model if isinstance(model, str) and model else None


NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class _Details(msgspec.Struct):
    cached_tokens: NonNegative | None = None


class _OpenAIUsage(msgspec.Struct):
    prompt_tokens: NonNegative | None = None
    completion_tokens: NonNegative | None = None
    total_tokens: NonNegative | None = None
    prompt_tokens_details: _Details | None = None


_USAGE: Final = msgspec.json.Decoder(_OpenAIUsage | None)


def usage_from_json(raw: bytes) -> Usage | None:
    """fd2's `Usage` from an OpenAI `usage` object (JSON); None when absent or malformed (the
    request is then charged its estimate)."""
    try:
        found = _USAGE.decode(raw)
    except msgspec.DecodeError:
        return None
    if found is None:
        return None
    prompt, completion = found.prompt_tokens, found.completion_tokens
    if prompt is None and completion is None:
        if found.total_tokens is None:
            return None
        prompt = found.total_tokens  # an answer that gives the total alone
    details = found.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    return Usage(
        prompt_tokens=prompt or 0, completion_tokens=completion or 0, cached_tokens=cached or 0
    )


def usage_from_stream(reported: tuple[int, int, int]) -> Usage:
    """fd2's `Usage` from the native framer's reading of a stream's `usage` event."""
    prompt, completion, _total = reported
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


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


_warming: list[asyncio.Future[int]] = []


def warm_up() -> None:
    """Builds the default encoder (~0.2 s, once per process) in a worker thread when the first
    inference module is set up, so the first counted request does not pay for it."""
    if not _warming:
        loop = asyncio.get_running_loop()
        _warming.append(loop.run_in_executor(None, count_prompt, "warm", "o200k_base"))
