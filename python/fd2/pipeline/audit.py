"""The audit step: one record per request of a module with an `audit` block (docs/privacy.md).

It runs first, so it sees every outcome: a refused credential, a limit, a cache hit, a blocked
request, the module's answer. The record is built after the answer has ended and handed to the
worker's `AuditWriter` without waiting; tokens come from the metering contract (the usage the
module reported, so the step asks modules to report it: `request.metered`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from fd2.audit.notes import NOTES, Notes
from fd2.audit.record import ENCODER, AuditRecord, AuditSettings
from fd2.audit.writer import AuditWriter
from fd2.metering import Meter
from fd2.module import Handler
from fd2.serving.errors import Fd2Error
from fd2.serving.request import Request
from fd2.telemetry.log_throttle import ThrottledLog
from fd2.types import Message, Send

_DEPLOYMENT = b"x-fd2-deployment"
_throttled = ThrottledLog(logging.getLogger("fd2.audit"))


class Audit:
    __slots__ = ("_meter", "_settings", "_writer")

    def __init__(self, settings: AuditSettings, writer: AuditWriter, meter: Meter | None) -> None:
        self._settings = settings
        self._writer = writer
        self._meter = meter

    async def __call__(self, request: Request, send: Send, call_next: Handler) -> None:
        started = time.monotonic()
        wall = datetime.now(UTC)
        request.metered = True  # the module reports usage: the record carries tokens
        notes = Notes()
        token = NOTES.set(notes)
        answer = _Watched(send, self._settings.max_content_bytes if self._settings.content else 0)
        error: str | None = None
        status = 0
        try:
            await call_next(request, answer)
        except Fd2Error as exc:
            error, status = exc.code or exc.error_type, exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away first
            raise
        except Exception:
            error, status = "internal_error", 500
            raise
        finally:
            NOTES.reset(token)
            try:
                await self._record(request, answer, notes, wall, started, status, error)
            except Exception as exc:  # an audit record must never fail the request
                _throttled.error("audit-record", "audit: a record was not made (%r)", exc)

    async def _record(
        self,
        request: Request,
        answer: _Watched,
        notes: Notes,
        wall: datetime,
        started: float,
        status: int,
        error: str | None,
    ) -> None:
        identity = request.identity
        usage = request.usage
        record = AuditRecord(
            time=wall.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            request_id=request.request_id,
            project=request.project,
            module=request.module,
            environment=request.environment,
            method=request.method,
            endpoint=request.path,
            caller=identity.credential if identity is not None else None,
            model=await self._model(request),
            deployment=answer.deployment,
            status=answer.status or status,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
            cached_tokens=usage.cached_tokens
            if usage is not None and usage.cached_tokens
            else None,
            latency_ms=round((time.monotonic() - started) * 1000, 3),
            cache=notes.cache,
            redactions=notes.redactions,
            error=error if not answer.status else None,
        )
        if self._settings.content:
            limit = self._settings.max_content_bytes
            body = request.body_if_read()
            if body is not None:
                record.request, cut = _content(body, limit)
                record.truncated = cut
            record.response, cut = _content(b"".join(answer.chunks), limit)
            record.truncated = record.truncated or cut or answer.cut
        self._writer.submit(ENCODER.encode(record))

    async def _model(self, request: Request) -> str | None:
        cost = request.cost
        if cost is not None:
            return cost.model
        if self._meter is None or request.body_if_read() is None:
            return None  # never read a body here that the route did not
        try:
            return await self._meter.model(request)
        except Fd2Error:
            return None


def _content(body: bytes, limit: int) -> tuple[Any, bool]:
    if len(body) > limit:
        return body[:limit].decode(errors="replace"), True
    try:
        return orjson.loads(body), False
    except orjson.JSONDecodeError:
        return body.decode(errors="replace"), False


class _Watched:
    """The `send` the next step gets: notes the status and deployment, and copies the answer
    (up to `keep` bytes) when the module records content."""

    __slots__ = ("_keep", "_send", "chunks", "cut", "deployment", "kept", "status")

    def __init__(self, send: Send, keep: int) -> None:
        self._send = send
        self._keep = keep
        self.status = 0
        self.deployment: str | None = None
        self.chunks: list[bytes] = []
        self.kept = 0
        self.cut = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            for name, value in message.get("headers", ()):
                if name == _DEPLOYMENT:
                    self.deployment = value.decode("latin-1")
        elif self._keep and message["type"] == "http.response.body":
            body: bytes = message.get("body", b"")
            room = self._keep - self.kept
            if len(body) > room:
                self.cut = True
                body = body[: max(room, 0)]
            if body:
                self.chunks.append(bytes(body))
                self.kept += len(body)
        await self._send(message)
