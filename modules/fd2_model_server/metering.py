"""What a model-server call costs, for the core's token limits (fd2.metering).

The model server reports no usage, so a call is charged its estimate: the tokens of the texts it
reads, counted with OpenAI's encoding (o200k_base; the server's own tokenizer differs, but this
is the figure token limits are written in). A rerank reads each text beside the query, a
classification each text beside every label. Nothing is generated: no completion tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fd2.metering import Cost
from fd2.serving.request import Request
from fd2.tokens import count_tokens, count_tokens_all
from fd2_model_server.bodies import CLASSIFY, RERANK

Prepare = Callable[[dict[str, Any]], dict[str, Any]]
"""A request body as the handler will send it (checked, its model decided), in the model
server's shape."""


class ModelServerMeter:
    __slots__ = ("_kind", "_prepare")

    def __init__(self, kind: str, prepare: Prepare) -> None:
        self._kind = kind
        self._prepare = prepare

    async def model(self, request: Request) -> str | None:
        model = self._prepare(await request.json_object()).get("model_name")
        return model if isinstance(model, str) else None

    async def estimate(self, request: Request) -> Cost:
        body = self._prepare(await request.json_object())
        return Cost(
            model=body.get("model_name"),
            prompt_tokens=prompt_tokens(self._kind, body),
            completion_bound=0,
        )


def prompt_tokens(kind: str, body: dict[str, Any]) -> int:
    texts: list[str] = body["texts"]
    tokens = count_tokens_all(texts)
    if kind == RERANK:
        return tokens + len(texts) * count_tokens(body["query"])
    if kind == CLASSIFY:
        labels: list[str] = body["labels"]
        return tokens * len(labels) + count_tokens_all(labels) * len(texts)
    return tokens
