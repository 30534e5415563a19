"""Chat calls to an inference module in process (its route: auth, limits, cache, metering).

The caller's credential goes with each call, so the inference route authorises and counts the
caller as if it had called it. `cache_ttl` is passed as the response cache's own header
(`x-fd2-cache-ttl`, docs/cache.md): an inference module with a `cache` block stores the answer
that long, and its `x-fd2-cache: hit` is what makes an analysis `cached`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from fd2.serving.errors import Fd2Error
from fd2.serving.module_calls import ModuleHandle

CHAT_PATH: Final = "/v1/chat/completions"
_MESSAGE_MAX: Final = 300


class ModuleCallError(Fd2Error):
    """The inference module's own error answer, with its status, type and code."""

    def __init__(self, status: int, error: Mapping[str, Any], module: str) -> None:
        message = str(error.get("message") or "an error")[:_MESSAGE_MAX]
        code, param = error.get("code"), error.get("param")
        super().__init__(
            f"inference module {module!r} answered {status}: {message}",
            code=code if isinstance(code, str) else None,
            param=param if isinstance(param, str) else None,
        )
        self.status = status  # type: ignore[misc]
        kind = error.get("type")
        self.error_type = kind if isinstance(kind, str) else "upstream_error"  # type: ignore[misc]


class ModuleChat:
    """One item's calls: counts cache hits, keeps the headers to forward."""

    def __init__(
        self,
        handle: ModuleHandle,
        forward: Sequence[tuple[bytes, bytes]],
        request_id: str,
        cache_ttl: int | None,
    ) -> None:
        self._handle = handle
        self._headers = list(forward)
        if cache_ttl is not None:
            self._headers.append((b"x-fd2-cache-ttl", str(cache_ttl).encode()))
        self._request_id = request_id
        self.calls = 0
        self.hits = 0

    async def __call__(self, body: dict[str, Any]) -> Mapping[str, Any]:
        self.calls += 1
        async with await self._handle.call(
            "POST", CHAT_PATH, body, headers=self._headers, request_id=self._request_id
        ) as answer:
            raw = await answer.read()
            status = answer.status
            if answer.header(b"x-fd2-cache") == b"hit":
                self.hits += 1
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = None
        if status != 200:
            error = value.get("error") if isinstance(value, dict) else None
            raise ModuleCallError(
                status, error if isinstance(error, dict) else {}, self._handle.name
            )
        if not isinstance(value, dict):
            raise ModuleCallError(
                502, {"message": "the answer is not a chat completion"}, self._handle.name
            )
        return value
