"""A module that uses every part of its context, loaded by fd2 with `--module-packages ctxprobe`
(test_module_context.py puts this directory on fd2's PYTHONPATH).

`POST /v1/ask` relays a question to its `chat` dependency in process (streamed or not);
`POST /v1/count` counts in the shared Redis; `GET /v1/state` tells what its background tasks did;
its health is whether `chat` answers `config.health_path` (in process too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from fd2.module import Handler, Health, Module, ModuleContext
from fd2.serving.errors import BadRequest, ServiceUnavailable
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send

_RELAYED = (b"content-type", b"cache-control")


class AskModule(Module):
    module_types = ("ask",)

    async def setup(self, context: ModuleContext) -> None:
        self._chat = context.modules["chat"]
        self._health_path = str(context.config.get("health_path", "/v1/models"))
        self._redis = context.redis
        self._questions = context.metrics.counter(
            "questions_total", "Questions relayed to the chat module", labels=("stream",)
        )
        self._beats = 0
        self._crashy_runs = 0
        context.tasks.every("beat", 0.05, self._beat)
        context.tasks.spawn("crashes once", self._crash_once)

    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        return {
            "/v1/ask": {"POST": self._ask},
            "/v1/count": {"POST": self._count},
            "/v1/state": {"GET": self._state},
        }

    async def _ask(self, request: Request, send: Send) -> None:
        body = await request.json_object()
        question = body.get("question")
        if not isinstance(question, str):
            raise BadRequest("'question' must be a string", param="question")
        stream = body.get("stream") is True
        self._questions.labels(stream=str(stream).lower()).inc()
        forwarded = request.header(b"authorization")
        async with await self._chat.call(
            "POST",
            "/v1/chat/completions",
            {
                "model": body.get("model", "gpt-4o-mini"),
                "messages": [{"role": "user", "content": question}],
                "stream": stream,
            },
            headers=[(b"authorization", forwarded)] if forwarded else [],
            request_id=request.request_id,
        ) as answer:
            headers = [(k, v) for k, v in answer.headers if k in _RELAYED]
            headers.append((b"x-answered-by", b"chat, in process"))
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            async for chunk in answer:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    async def _count(self, request: Request, send: Send) -> None:
        if self._redis is None:
            raise ServiceUnavailable("no Redis configured")
        count = await self._redis.incr("ctxprobe:count")
        await send_bytes(send, 200, orjson.dumps({"count": count}))

    async def _state(self, request: Request, send: Send) -> None:
        state: dict[str, Any] = {"beats": self._beats, "crashy_runs": self._crashy_runs}
        await send_bytes(send, 200, orjson.dumps(state))

    async def health(self) -> Health:
        async with await self._chat.call("GET", self._health_path) as answer:
            if answer.status == 200:
                return Health(ok=True)
            return Health(ok=False, detail=f"chat answered {answer.status}")

    async def _beat(self) -> None:
        self._beats += 1

    async def _crash_once(self) -> None:
        self._crashy_runs += 1
        if self._crashy_runs == 1:
            raise RuntimeError("the first run fails on purpose")
        await asyncio.Event().wait()
