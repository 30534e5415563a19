"""How OpenAI requests are metered (the fd2.metering contract): every OpenAI rule lives here.

Estimate, before the call: the prompt counted with the model's encoding through fd2.tokens (chat
`messages` by OpenAI's documented per-message rule, completions' `prompt`, embeddings' `input`;
pre-tokenised prompts by their length), and the completion bound — the request's
`max_completion_tokens`, else `max_tokens`, else the manifest's `max_tokens`, else 1024;
embeddings generate nothing. The request counted is the one that goes upstream (the module's
defaults applied: its model, its system prompt), so the estimate is the prompt the upstream sees.

Usage, after the call: OpenAI's `usage` object (`prompt_tokens`, `completion_tokens`,
`prompt_tokens_details.cached_tokens`), converted to fd2's `Usage`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Final

import msgspec

from fd2.metering import Cost, Usage
from fd2.request import Request
from fd2.tokens import count_prompt, encoding_for_model
from inference_openai.chat_tokens import count_chat
from inference_openai.transforms import Prepared

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


_warming: list[asyncio.Future[int]] = []


def warm_up() -> None:
    """Builds the default encoder (~0.2 s, once per process) in a worker thread when the first
    inference module is set up, so the first counted request does not pay for it."""
    if not _warming:
        loop = asyncio.get_running_loop()
        _warming.append(loop.run_in_executor(None, count_prompt, "warm", "o200k_base"))
