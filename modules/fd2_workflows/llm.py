"""Model calls of `llm` nodes: in process, through the inference module's own route.

`context.modules[name].call(...)` runs the inference module's compiled route (auth, limits,
metering, the module's defaults and upstream), so every model call a workflow makes is checked
and counted once, as if the caller had made it. The caller's credential goes with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

import orjson

from fd2.serving.errors import Fd2Error
from fd2.serving.module_calls import ModuleHandle
from fd2_workflows.errors import (
    NodeFailed,
    NodeForbidden,
    NodeRateLimited,
    NodeRefused,
    NodeTimedOut,
)

CHAT_PATH: Final = "/v1/chat/completions"
RETRYABLE: Final = frozenset({408, 409, 429, 500, 502, 503, 504})
"""What may go better on a second try; a 400, 401, 403 or 404 will not."""
_BACKOFF_S: Final = 0.2
_BACKOFF_CAP_S: Final = 2.0
_MESSAGE_MAX: Final = 300


class ModelCaller(Protocol):
    async def __call__(self, node: str, module: str, body: Mapping[str, Any]) -> str:
        """The text the model answered to `body` (a chat completion request)."""
        ...


class Attempt(Exception):
    """One failed try: the status (0: no answer) and what the module said."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HandleCaller:
    """Calls the workflow's inference modules for one run, retrying what may succeed."""

    def __init__(
        self,
        handles: Mapping[str, ModuleHandle],
        *,
        forward: Iterable[tuple[bytes, bytes]],
        request_id: str,
        attempts: int,
    ) -> None:
        self._handles = handles
        self._forward = tuple(forward)
        self._request_id = request_id
        self._attempts = attempts
        self.calls = 0

    async def __call__(self, node: str, module: str, body: Mapping[str, Any]) -> str:
        last = Attempt(0, "no attempt was made")
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(min(_BACKOFF_S * 2 ** (attempt - 1), _BACKOFF_CAP_S))
            try:
                return await self._once(module, body)
            except Attempt as failed:
                last = failed
                if failed.status not in RETRYABLE:
                    break
        raise _final_error(node, module, last, self._attempts)

    async def _once(self, module: str, body: Mapping[str, Any]) -> str:
        self.calls += 1
        handle = self._handles[module]
        async with await handle.call(
            "POST", CHAT_PATH, body, headers=self._forward, request_id=self._request_id
        ) as answer:
            raw = await answer.read()
            status = answer.status
        if status != 200:
            raise Attempt(status, _error_message(raw))
        try:
            content = orjson.loads(raw)["choices"][0]["message"]["content"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise Attempt(502, "the answer is not a chat completion") from None
        if not isinstance(content, str):
            raise Attempt(502, "the answer has no text content")
        return content


def _error_message(raw: bytes) -> str:
    try:
        message = orjson.loads(raw)["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "an answer that is not an OpenAI error"
    if not isinstance(message, str):
        return "an error without a message"
    return message[:_MESSAGE_MAX]


def _final_error(node: str, module: str, last: Attempt, attempts: int) -> Fd2Error:
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    said = f"inference module {module!r} answered {last.status}: {last.message}"
    text = f"workflow node {node!r} failed: {said}"
    if last.status == 429:
        return NodeRateLimited(f"{text} ({tries})")
    if last.status == 401:
        return NodeRefused(text)
    if last.status == 403:
        return NodeForbidden(text)
    if last.status == 504:
        return NodeTimedOut(f"{text} ({tries})")
    return NodeFailed(node, f"{said} ({tries})" if last.status in RETRYABLE else said)
