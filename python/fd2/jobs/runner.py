"""Runs one job: its module endpoint, in process, through the route's steps, as its caller.

The caller's identity captured at submission goes in the call's scope (the auth step takes it
instead of a credential, which fd2 never stores); the route's other steps (authorisation,
limits, and whatever else the route applies) run as they do for an HTTP request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from fd2.jobs.records import identity_from_record
from fd2.pipeline.auth import JOB_IDENTITY
from fd2.serving.errors import Fd2Error, ServiceUnavailable
from fd2.serving.module_calls import ModuleHandle

if TYPE_CHECKING:
    from fd2.control.route_table import RouteTable

_log = logging.getLogger("fd2.jobs")
TRANSIENT: Final = frozenset({500, 502, 503, 504})
"""Answers worth another attempt: the module or its upstream failed, not the request."""


@dataclass(frozen=True)
class Outcome:
    """`succeeded`, `failed`, `limited` (429: try again, the attempt not counted) or
    `transient` (try again while attempts remain)."""

    kind: str
    result: Any = None
    error: Any = None
    retry_after_s: float = 0.0


class JobRunner:
    def __init__(
        self,
        table: Callable[[], RouteTable],
        max_answer_bytes: int,
        ensure_project: Callable[[str], Awaitable[None]],
    ) -> None:
        self._table = table
        self._max_answer = max_answer_bytes
        self._ensure = ensure_project

    async def run(self, record: Mapping[str, str]) -> Outcome:
        try:
            await self._ensure(record["project"])
        except ServiceUnavailable as exc:  # the Control Tower cannot say now: try again later
            return Outcome("transient", error=_error(503, exc.code or "unavailable", exc.message))
        except Fd2Error:
            pass  # not found: the call below answers that as an HTTP client would see it
        handle = ModuleHandle(
            self._table,
            project=record["project"],
            module=record["module"],
            module_type="",
            environment=record["environment"],
            caller="fd2.jobs",
            sets_scope=True,
        )
        scope: dict[str, Any] = {}
        identity = identity_from_record(record.get("identity", ""))
        if identity is not None:
            scope[JOB_IDENTITY] = identity
        async with await handle.call(
            "POST",
            record["endpoint"],
            record["body"].encode(),
            headers=[(b"content-type", b"application/json")],
            request_id=record["id"],
            scope=scope,
        ) as answer:
            body = await _bounded(answer, self._max_answer)
            status = answer.status
            retry_after = answer.header(b"retry-after")
        if body is None:
            return Outcome(
                "failed", error=_error(500, "answer_too_large", "The answer is too large.")
            )
        if 200 <= status < 300:
            return Outcome("succeeded", result={"status_code": status, "body": _decoded(body)})
        decoded = _decoded(body)
        detail = decoded.get("error") if isinstance(decoded, dict) else None
        if not isinstance(detail, dict):
            detail = {"message": "The module answered with an error.", "code": None}
        error = {"status_code": status, **detail}
        if status == 429:
            return Outcome("limited", error=error, retry_after_s=_seconds(retry_after))
        if status in TRANSIENT:
            return Outcome("transient", error=error)
        return Outcome("failed", error=error)


async def _bounded(answer: Any, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer:
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _decoded(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def _seconds(value: bytes | None) -> float:
    try:
        return min(max(float(value or b"1"), 0.1), 60.0)
    except ValueError:
        return 1.0


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"status_code": status, "message": message, "type": "server_error", "code": code}
