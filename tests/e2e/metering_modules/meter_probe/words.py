"""The probe modules' own counting rule and meter: one token per whitespace-separated word of the
request's `prompt`, at most `max_tokens` more for the answer. Nothing OpenAI about it."""

from __future__ import annotations

from typing import Any

from fd2.metering import Cost
from fd2.serving.errors import BadRequest
from fd2.serving.request import Request


def prompt_words(payload: dict[str, Any]) -> int:
    prompt = payload.get("prompt")
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string.", param="prompt")
    return len(prompt.split())


def completion_bound(payload: dict[str, Any]) -> int:
    bound = payload.get("max_tokens")
    if not isinstance(bound, int) or isinstance(bound, bool) or bound < 1:
        raise BadRequest("'max_tokens' must be a positive integer.", param="max_tokens")
    return bound


class WordsMeter:
    async def model(self, request: Request) -> str | None:
        model = (await request.json_object()).get("model")
        return model if isinstance(model, str) else None

    async def estimate(self, request: Request) -> Cost:
        payload = await request.json_object()
        return Cost(
            model=await self.model(request),
            prompt_tokens=prompt_words(payload),
            completion_bound=completion_bound(payload),
        )
