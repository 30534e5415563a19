"""Embeddings from a provider that embeds one input per call (Bedrock's Titan): one call per
input, a bounded number at a time, answered as one OpenAI list in input order.

A provider opts in with `embeddings_calls(body)` and `embeddings_merge(payloads, model=...)`;
the first call that fails fails the request (the others are cancelled) with that call's error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final, Protocol

import orjson

from fd2.serving.draining import drain_guard
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send
from fd2_inference.answers import relayed_headers, shutting_down, untranslatable
from fd2_inference.chat_service import upstream_call
from fd2_inference.providers.base import Provider, ProviderCall
from fd2_inference.translated import TRANSLATION_ERRORS as _TRANSLATION_ERRORS
from fd2_inference.translated import check_usage, report_usage, translated_answer
from fd2_inference.upstream import Opens

MAX_CONCURRENT_CALLS: Final = 8
"""Calls in flight for one request: enough to hide each call's latency, not a flood."""


class FansOutEmbeddings(Protocol):
    def embeddings_calls(self, body: Mapping[str, Any]) -> Sequence[ProviderCall]: ...

    def embeddings_merge(self, payloads: Sequence[bytes], *, model: str) -> Mapping[str, Any]: ...


def fans_out(provider: object) -> FansOutEmbeddings | None:
    """The provider as one that embeds an input per call, or None."""
    if hasattr(provider, "embeddings_calls") and hasattr(provider, "embeddings_merge"):
        return provider
    return None


async def _all(
    one: Callable[[ProviderCall], Coroutine[Any, Any, tuple[bytes, Any]]],
    calls: Sequence[ProviderCall],
) -> list[tuple[bytes, Any]]:
    """Every call's result in order; the first failure cancels the others and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(call)) for call in calls]
    except* Exception as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _raw(body: bytes) -> Mapping[str, Any]:
    return {"payload": body}


async def relay_fanned_out(
    upstream: Opens,
    provider: Provider,
    calls: Sequence[ProviderCall],
    merge: Callable[[Sequence[bytes]], Mapping[str, Any]],
    send: Send,
    logger: logging.Logger,
    request: Request,
    finish: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    rid = request.request_id
    slots = asyncio.Semaphore(MAX_CONCURRENT_CALLS)

    async def one(call: ProviderCall) -> tuple[bytes, Any]:
        async with slots:
            answer, raw = await translated_answer(
                upstream, provider, upstream_call(call, rid), _raw, logger, rid
            )
            return answer["payload"], raw

    with drain_guard() as guard:
        try:
            results = await _all(one, calls)
        except asyncio.CancelledError:
            if not guard.take_cut():
                raise
            logger.warning("request %s: ended by the shutdown deadline", rid)
            raise shutting_down() from None
    try:
        answer = merge([payload for payload, _ in results])
        check_usage(answer.get("usage"))
    except _TRANSLATION_ERRORS as exc:
        logger.warning("request %s: untranslatable answer (%s)", rid, type(exc).__name__)
        raise untranslatable(provider.name, "its answer is not the documented shape") from None
    if request.metered:
        report_usage(request, answer.get("usage"))
    if finish is not None:
        answer = finish(answer)
    await send_bytes(send, 200, orjson.dumps(answer), headers=relayed_headers(results[-1][1]))
