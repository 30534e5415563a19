"""What a RAG call costs, for the core's token limits (fd2.metering).

The RAG service's query and retrieve report no token usage, so such a call is charged its
estimate: the question's tokens and, for a query, the devkit's own default answer length (its
`GenerationConfig.max_tokens`, 1024). A chat completion that is not streamed carries the devkit's
`usage` (its own count), which settles the charge; a streamed one carries none. Its "model" is
the RAG configuration the call uses: what a caller whose key or token lists `models` must be
allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeGuard

from fd2.metering import Cost, Usage
from fd2.serving.request import Request
from fd2.tokens import count_tokens
from fd2_inference.metering import count_chat

ANSWER_BOUND: Final = 1024
"""The most tokens a generated answer adds (the devkit's default max_tokens)."""

Prepare = Callable[[dict[str, Any]], dict[str, Any]]
Configurations = Callable[[dict[str, Any]], list[str]]
"""The configurations a prepared body reads, the primary first (fd2_rag.bodies)."""


class RagMeter:
    """One endpoint's meter: `prepare` applies the module's defaults, as the handler will."""

    __slots__ = ("_answers", "_configurations", "_prepare")

    def __init__(self, prepare: Prepare, configurations: Configurations, *, answers: bool) -> None:
        self._prepare = prepare
        self._configurations = configurations
        self._answers = answers

    async def model(self, request: Request) -> str | None:
        """The primary configuration. The others of a multi-configuration retrieve are checked
        by the module's handler (`RagServiceModule`), since a meter names one model."""
        names = self._configurations(self._prepare(await request.json_object()))
        return names[0] if names and names[0] else None

    async def estimate(self, request: Request) -> Cost:
        body = self._prepare(await request.json_object())
        messages = body.get("messages")
        if isinstance(messages, list):
            tokens = count_chat(messages)
        else:
            query = body.get("query")
            tokens = count_tokens(query) if isinstance(query, str) else 0
        return Cost(
            model=await self.model(request),
            prompt_tokens=tokens,
            completion_bound=ANSWER_BOUND if self._answers else 0,
        )


def reported_usage(answer: Any) -> Usage | None:
    """The `usage` of a devkit chat completion (its ChatCompletionResponse), when well formed."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not (_count(prompt) and _count(completion)):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
