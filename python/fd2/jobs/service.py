"""The job machinery of one worker process, as the control plane wires it: the endpoints every
module route gets (`endpoints`), and the consumer loops (`start`).

Without `--redis-url` the endpoints exist and answer 503: fd2 keeps no job it could lose.
Jobs use a Redis client of their own (same URL as the shared one): a blocking stream read and
a batch file's upload need longer command timeouts than the hot path's `--redis-timeout`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from fd2.control.secrets import ResolvesSecrets, Secret, is_secret_reference
from fd2.jobs.api import JobRoute, JobsApi, unavailable
from fd2.jobs.batches import BatchesApi, BatchWork
from fd2.jobs.files import FilesApi
from fd2.jobs.runner import JobRunner
from fd2.jobs.settings import JobSettings
from fd2.jobs.store import JobStore
from fd2.jobs.webhooks import WebhookSender, signing_key
from fd2.jobs.worker import JobWorker
from fd2.pipeline.auth import Authenticate
from fd2.pipeline.step import Step, compose
from fd2.serving.errors import ConfigError, ServiceUnavailable
from fd2.serving.request import Request
from fd2.types import Send

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from fd2.config import Settings
    from fd2.control.route_table import RouteTable
    from fd2.control.tasks import Supervisor
    from fd2.module import Handler
    from fd2.pipeline.route_steps import RouteSteps

_log = logging.getLogger("fd2.jobs")
REDIS_TIMEOUT_S: Final = 5.0
"""Longer than a blocking stream read (1 s) and a large batch file's transfer."""
RESERVED: Final = ("/v1/jobs", "/v1/files", "/v1/batches")


class JobService:
    def __init__(
        self, settings: JobSettings, redis: Redis | None, table: Callable[[], RouteTable]
    ) -> None:
        self.settings = settings
        self.redis = redis
        self._routes: dict[tuple[str, str, str], JobRoute] = {}
        self._table = table
        self.find_project: Callable[[str], Awaitable[None]] | None = None
        """How a project this worker has not loaded is made known (Control Tower projects are
        looked up on demand): `Runtime.find_project`, set by the runtime."""
        self.store = JobStore(redis, settings) if redis is not None else None
        self._storeless: dict[str, Mapping[str, Handler]] | None = None
        """The job endpoints of every open route when there is no Redis (`endpoints`)."""
        self.worker: JobWorker | None = None
        if self.store is not None:
            batches = BatchWork(self)
            self.worker = JobWorker(
                self.store,
                JobRunner(table, settings.max_file_bytes, self.ensure_project),
                handlers={
                    "deliver": WebhookSender(self.store, self._secret, self.ensure_project).deliver,
                    "expand": batches.expand,
                    "finalize": batches.finalize,
                    "cancel_batch": batches.cancel,
                },
            )

    @classmethod
    def from_settings(cls, settings: Settings, table: Callable[[], RouteTable]) -> JobService:
        redis = None
        if settings.redis_url:
            from fd2.limits.redis_client import make_redis

            redis = make_redis(settings.redis_url, timeout=REDIS_TIMEOUT_S)
        return cls(JobSettings.from_settings(settings), redis, table)

    def require_store(self) -> JobStore:
        if self.store is None:
            raise unavailable()
        return self.store

    def endpoints(
        self,
        *,
        project: str,
        module: str,
        environment: str,
        handlers: Mapping[str, Mapping[str, Handler]],
        steps: RouteSteps | None,
        config: Mapping[str, Any],
        secrets: ResolvesSecrets,
    ) -> dict[str, Mapping[str, Handler]]:
        """`handlers` (a route's, behind its steps) with the job, file and batch endpoints
        added; the route is remembered for its webhook secret. ConfigError for a webhook secret
        that cannot be used.

        The added endpoints authenticate the caller as the route does, and take no rate limit:
        the work a job does is limited when it runs (through the route's steps, as its
        caller); submitting it and polling it are not counted against that work's limits."""
        jobs = _jobs_config(config)
        if jobs.get("enabled", True) is False:
            return dict(handlers)  # the operator turned jobs off for this module
        webhook_secret = _webhook_secret(jobs, secrets) if jobs else None  # checked here
        key = (project, module, environment)
        open_route = steps is None or (steps.audit is None and steps.policy.mode == "none")
        if self.store is None and open_route and webhook_secret is None:
            # Without Redis every job endpoint answers 503 before it reads its route, and an
            # open route puts no step in front: one set of handlers serves every such route
            # (a set per route was most of the ~10 µs this took per route). Nothing reads
            # such a route's record: `_secret` of a route without one is None either way.
            self._routes.pop(key, None)
            return {**self._storeless_handlers(), **handlers}
        route = JobRoute(
            project=project,
            module=module,
            environment=environment,
            endpoints=job_endpoints(handlers),
            webhook_secret=webhook_secret,
        )
        self._routes[key] = route
        if self.store is None and open_route:
            return {**self._storeless_handlers(), **handlers}  # (as above)
        guard: list[Step] = []
        if steps is not None and steps.audit is not None:  # submissions and reads are audited
            guard.append(steps.audit(None, None))
        if steps is not None and steps.policy.mode != "none":
            guard.append(Authenticate(steps.policy))
        # The module's own endpoints win: a module that serves /v1/files itself keeps them.
        return {**self._added(route, guard), **handlers}

    def _storeless_handlers(self) -> dict[str, Mapping[str, Handler]]:
        """The job endpoints of every open route without Redis (each answers 503 first)."""
        if self._storeless is None:
            self._storeless = self._added(
                JobRoute(
                    project="",
                    module="",
                    environment="",
                    endpoints=frozenset(),
                    webhook_secret=None,
                ),
                [],
            )
        return self._storeless

    def _added(self, route: JobRoute, guard: list[Step]) -> dict[str, Mapping[str, Handler]]:
        added: dict[str, Mapping[str, Handler]] = {}
        for api in (JobsApi(self, route), FilesApi(self, route), BatchesApi(self, route)):
            for path, methods in api.handlers().items():
                added[path] = {
                    method: compose(guard, partial(_redis_guard, handler=h))
                    for method, h in methods.items()
                }
        return added

    def start(self, tasks: Supervisor) -> None:
        if self.worker is not None and self.settings.workers > 0:
            self.worker.start(tasks)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    async def ensure_project(self, project: str) -> None:
        """Load `project` into the route table if this worker has not (a job or webhook of it
        may be claimed by any replica). Raises what the lookup raises."""
        if project not in self._table().projects and self.find_project is not None:
            await self.find_project(project)

    def _secret(self, project: str, module: str, environment: str) -> Secret | None:
        route = self._routes.get((project, module, environment))
        return route.webhook_secret if route is not None else None


async def _redis_guard(request: Request, send: Send, *, handler: Handler) -> None:
    """A Redis that does not answer is a 503 saying so, not a 500."""
    from redis.exceptions import RedisError

    try:
        await handler(request, send)
    except (RedisError, OSError) as exc:
        _log.warning("jobs: Redis failed (%s)", type(exc).__name__)
        raise ServiceUnavailable(
            "Jobs are unavailable: their Redis does not answer; try again shortly.",
            code="jobs_unavailable",
        ) from None


def job_endpoints(handlers: Mapping[str, Mapping[str, Handler]]) -> frozenset[str]:
    """The endpoints of a route's handlers that a job may run: those that take POST."""
    return frozenset(
        [
            path
            for path, methods in handlers.items()
            if "POST" in methods and not path.startswith(RESERVED)
        ]
    )


def _jobs_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    jobs = config.get("jobs")
    if jobs is None:
        return {}
    if not isinstance(jobs, Mapping):
        raise ConfigError("config.jobs must be an object")
    return jobs


def _webhook_secret(jobs: Mapping[str, Any], secrets: ResolvesSecrets) -> Secret | None:
    """`jobs`: the module's `config.jobs` (`_jobs_config`)."""
    value = jobs.get("webhook_secret")
    if value is None:
        return None
    if isinstance(value, Secret):
        secret = value
    elif is_secret_reference(value):
        secret = secrets.resolve(str(value))
    else:
        raise ConfigError("config.jobs.webhook_secret must be a secret reference (env:, vault:...)")
    signing_key(secret)  # its form is checked now, not at the first delivery
    return secret
