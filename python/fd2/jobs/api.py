"""`/v1/jobs`: submit a module endpoint as a job, read it, cancel it, list a project's jobs.

Every module route gets these endpoints (behind the route's steps: the caller is authenticated
as for any request). A job belongs to its project: another project's job id is not found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from fd2.auth.errors import Forbidden
from fd2.jobs import ssrf
from fd2.jobs.http import Conflict, limit_of, page, query, send_json, tail_id
from fd2.jobs.records import identity_record, job_view, submitted_view
from fd2.jobs.store import STATUSES, JobStore
from fd2.serving.errors import BadRequest, NotFound, ServiceUnavailable
from fd2.serving.request import Request
from fd2.types import Send

if TYPE_CHECKING:
    from fd2.control.secrets import Secret
    from fd2.jobs.service import JobService

JOBS_PATH: Final = "/v1/jobs"
NO_REDIS: Final = (
    "Jobs and batches need Redis: this gateway was started without --redis-url, and it "
    "keeps no job it could lose."
)


class JobRoute(msgspec.Struct, frozen=True, kw_only=True):
    """What the job endpoints of one route know about it. (A Struct: every route of a build
    makes one, and a frozen dataclass sets each field through `object.__setattr__`.)"""

    project: str
    module: str
    environment: str
    endpoints: frozenset[str]
    """The module's endpoints a job may run (those that take POST)."""
    webhook_secret: Secret | None


class JobsApi:
    def __init__(self, service: JobService, route: JobRoute) -> None:
        self._service = service
        self._route = route

    def handlers(self) -> dict[str, dict[str, Any]]:
        return {
            JOBS_PATH: {"POST": self.submit, "GET": self.list},
            JOBS_PATH + "/*": {"GET": self.get, "DELETE": self.cancel},
        }

    async def submit(self, request: Request, send: Send) -> None:
        store = self._service.require_store()
        body = await request.json_object()
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str) or endpoint not in self._route.endpoints:
            raise BadRequest(
                f"endpoint must be one of this module's endpoints: "
                f"{', '.join(sorted(self._route.endpoints)) or 'none'}.",
                param="endpoint",
            )
        payload = body.get("body")
        if not isinstance(payload, Mapping):
            raise BadRequest("body must be the endpoint's request, a JSON object.", param="body")
        if payload.get("stream"):
            raise BadRequest("A job's answer is stored whole: stream must be off.", param="stream")
        identity = request.identity
        if identity is not None and not identity.allows_endpoint(endpoint):
            raise Forbidden()
        webhook = await self._webhook(body.get("webhook"))
        metadata = _metadata(body.get("metadata"))
        record = await store.submit(
            project=request.project,
            module=request.module,
            environment=request.environment,
            endpoint=endpoint,
            body=_dumps(payload),
            identity=identity_record(identity),
            webhook=webhook,
            metadata=metadata,
        )
        await send_json(send, 202, submitted_view(record))

    async def _webhook(self, raw: Any) -> dict[str, str] | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("url"), str):
            raise BadRequest("webhook must be an object with a url.", param="webhook")
        if self._route.webhook_secret is None:
            raise BadRequest(
                "This module has no webhook signing secret (jobs.webhook_secret in its config).",
                param="webhook",
            )
        try:
            await ssrf.check(raw["url"], self._service.settings)
        except ssrf.Refused as exc:
            raise BadRequest(str(exc), param="webhook.url") from None
        return {"url": raw["url"]}

    async def get(self, request: Request, send: Send) -> None:
        store = self._service.require_store()
        job_id, more = tail_id(request, JOBS_PATH)
        record = await _visible(store, request, job_id, more)
        await send_json(send, 200, job_view(record))

    async def cancel(self, request: Request, send: Send) -> None:
        store = self._service.require_store()
        job_id, more = tail_id(request, JOBS_PATH)
        record = await _visible(store, request, job_id, more)
        if not await store.finish(record, "cancelled"):
            raise Conflict(f"Job {job_id} has already ended ({record['status']}).")
        record = await store.get(request.project, job_id) or record
        await send_json(send, 200, job_view(record))

    async def list(self, request: Request, send: Send) -> None:
        store = self._service.require_store()
        params = query(request)
        status = params.get("status")
        if status is not None and status not in STATUSES:
            raise BadRequest(
                f"status must be one of {', '.join(sorted(STATUSES))}.", param="status"
            )
        records, more = await store.list(
            request.project,
            request.module,
            status=status,
            limit=limit_of(params),
            after=params.get("after"),
        )
        await send_json(send, 200, page([job_view(r) for r in records], more, key="job_id"))


async def _visible(store: JobStore, request: Request, job_id: str, more: str) -> dict[str, str]:
    """The job if the caller's route may see it: same project, same module (a caller admitted
    to one module of a project reads no other module's jobs); else 404."""
    record = await store.get(request.project, job_id) if not more else None
    if record is None or record.get("module") != request.module:
        raise NotFound(f"No job {job_id!r}.")
    return record


def _metadata(raw: Any) -> dict[str, str] | None:
    """The caller's own labels for a job, as OpenAI bounds them: at most 16 string pairs, keys
    up to 64 characters, values up to 512."""
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or len(raw) > 16
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in raw.items()
        )
    ):
        raise BadRequest(
            "metadata must be an object of at most 16 strings (keys up to 64 characters, "
            "values up to 512).",
            param="metadata",
        )
    return dict(raw)


def _dumps(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(value)


def unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(NO_REDIS, code="jobs_unavailable")
