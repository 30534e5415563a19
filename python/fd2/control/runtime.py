"""The control plane of one worker: secrets, the shared clients (upstream HTTP, Redis), the
metrics registry, the supervisor of background tasks, the manifest sources and the route builder,
started at ASGI lifespan start-up and stopped at shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from fd2.config import Settings
from fd2.control.module_health import ModuleHealth
from fd2.control.route_builder import RouteBuilder, startup_build
from fd2.control.secrets import Secret, SecretResolver
from fd2.control.sources.control_tower_cache import ControlTowerCache
from fd2.control.sources.control_tower_client import ControlTowerClient
from fd2.control.sources.local import LocalDirectorySource
from fd2.control.sources.protocol import ManifestSource
from fd2.control.sources.redis_share import RedisManifestShare
from fd2.control.tasks import Supervisor
from fd2.control.vault.pool import VaultPool
from fd2.control.vault.settings import settings_from_fd2
from fd2.http_client import ConnectionPool
from fd2.jobs.metrics import JobsCollector
from fd2.jobs.service import JobService
from fd2.limits.redis_client import make_redis
from fd2.pipeline.compiler import StepCompiler
from fd2.serving.errors import ConfigError
from fd2.telemetry.metrics import ControlPlaneCollector, MetricsRegistry

if TYPE_CHECKING:
    from redis.asyncio import Redis

_log = logging.getLogger("fd2.runtime")


class Runtime:
    def __init__(
        self,
        *,
        settings: Settings,
        http: aiohttp.ClientSession,
        redis: Redis | None,
        builder: RouteBuilder,
        sources: tuple[ManifestSource, ...],
        tasks: Supervisor,
        metrics: MetricsRegistry,
        health: ModuleHealth,
        share: RedisManifestShare | None = None,
        admin_token: Secret | None = None,
        vault: VaultPool | None = None,
        jobs: JobService | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = jobs
        self.http = http
        self.redis = redis
        """The worker's one Redis client (None without --redis-url)."""
        self.builder = builder
        self.sources = sources
        """In order of precedence: a project the first one serves is served from there."""
        self.tasks = tasks
        self.metrics = metrics
        self.health = health
        self.share = share
        self.admin_token = admin_token
        self.vault = vault
        self.control_tower = next(
            (source for source in sources if isinstance(source, ControlTowerCache)), None
        )
        """The source that looks projects up on demand (`fd2.serving.app` asks it on a miss)."""

    def ready(self) -> bool:
        """At least one manifest source is usable (it answers, or what it gave is still within
        its allowed staleness)."""
        return any(source.usable() for source in self.sources)

    def source_of(self, project: str) -> ManifestSource | None:
        return next((source for source in self.sources if source.serves(project)), None)

    async def find_project(self, project: str) -> None:
        """Make a project not in the route table known, from a source that looks projects up
        on demand; raises NotFound / ServiceUnavailable saying why it cannot be."""
        for source in self.sources:
            await source.lookup(project)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        if not settings.manifests and not settings.control_tower:
            raise ConfigError(
                "No manifest source: give --manifests DIR and/or --control-tower URL."
            )
        secrets = SecretResolver(
            config_file=Path(settings.secrets_file) if settings.secrets_file else None
        )
        admin_token = (
            secrets.resolve(settings.admin_token_ref) if settings.admin_token_ref else None
        )
        vault = VaultPool(
            secrets, settings_from_fd2(settings), default_ttl_s=settings.vault_secret_ttl
        )
        redis = _redis_client(settings)
        http = _upstream_client(settings)
        tasks = Supervisor()
        metrics = MetricsRegistry()
        builder, jobs = worker_builder(
            settings,
            secrets=secrets,
            http=http,
            redis=redis,
            tasks=tasks,
            metrics=metrics,
            vault=vault,
        )
        tasks.spawn("vault refresh", lambda: vault.run(builder.refresh_secrets))
        sources: list[ManifestSource] = []
        if settings.manifests:
            sources.append(
                LocalDirectorySource(
                    Path(settings.manifests), builder, poll_s=settings.manifest_poll
                )
            )
        share = None
        if settings.control_tower:
            cache = _control_tower_cache(settings, secrets, builder)
            sources.append(cache)
            if redis is not None:
                share = cache.share = RedisManifestShare(redis, cache)
                tasks.spawn("manifest notices (redis)", share.run)
        elif redis is not None:
            _log.info("--redis-url: no Control Tower, so no manifests are shared through Redis")
        health = ModuleHealth(builder)
        runtime = cls(
            settings=settings,
            http=http,
            redis=redis,
            builder=builder,
            sources=tuple(sources),
            tasks=tasks,
            metrics=metrics,
            health=health,
            share=share,
            admin_token=admin_token,
            vault=vault,
            jobs=jobs,
        )
        jobs.find_project = runtime.find_project
        try:
            with startup_build():  # start-up builds the whole table, frozen once built
                for source in sources:
                    await source.start(tasks)
        except BaseException:  # e.g. --manifests is not a directory: stop what was started
            await runtime.close()
            raise
        health.start(tasks)
        jobs.start(tasks)
        metrics.add_collector(ControlPlaneCollector(runtime))
        if jobs.store is not None:
            metrics.add_collector(JobsCollector(jobs.store.counters))
        _log.info("ready: %d routes from the manifest directory", len(builder.table))
        return runtime

    async def close(self) -> None:
        # Background work first (nothing rebuilds while modules close), then the modules (their
        # own tasks stop before each one's close), then what they all shared.
        await self.tasks.aclose()
        await self.builder.close()
        if self.jobs is not None:
            await self.jobs.close()
        await self.builder.upstream_pool.close()
        for source in self.sources:
            await source.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.http.close()
        if self.vault is not None:
            await asyncio.to_thread(self.vault.close)


def worker_builder(
    settings: Settings,
    *,
    secrets: SecretResolver,
    http: aiohttp.ClientSession,
    redis: Redis | None,
    tasks: Supervisor,
    metrics: MetricsRegistry,
    vault: VaultPool | None,
) -> tuple[RouteBuilder, JobService]:
    """The worker's route builder as start-up makes it: its step compiler (auth, limits, cache,
    redaction, audit), the jobs service's endpoints, the lean upstream pool. bench/control_plane.py
    builds its tables with this too, so its figures are start-up's."""
    gates = StepCompiler.from_settings(
        settings, secrets=secrets, http=http, redis=redis, tasks=tasks
    )
    jobs = JobService.from_settings(settings, lambda: builder.table)
    builder = RouteBuilder.from_settings(
        settings,
        secrets=secrets,
        http=http,
        environ=os.environ,
        gates=gates,
        vault=vault,
        redis=redis,
        metrics=metrics,
        tasks=tasks.child("module"),
        jobs=jobs,
        # The relays' client (fd2.http_client); aiohttp stays for JWKS, Control Tower, etc.
        upstream_pool=ConnectionPool(max_connections=settings.upstream_max_connections),
    )
    return builder, jobs


def _redis_client(settings: Settings) -> Redis | None:
    """The worker's one Redis client: limits, API keys, manifest sharing and modules use it."""
    if not settings.redis_url:
        return None
    try:
        client: Redis = make_redis(settings.redis_url, timeout=settings.redis_timeout)
    except ValueError as exc:
        raise ConfigError(f"--redis-url is not a Redis URL ({exc})") from None
    return client


def _upstream_client(settings: Settings) -> aiohttp.ClientSession:
    # aiohttp, not httpx, carries upstream traffic: measured here, httpx's connection pool
    # gave ~800 requests/s at 32 concurrent requests where aiohttp gave ~8,000 (docs/).
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=settings.upstream_max_connections,
            limit_per_host=0,
            # Below the idle timeouts upstream load balancers commonly use (60 s and up), so
            # fd2 closes an idle connection before the upstream does under it.
            keepalive_timeout=15.0,
        ),
        timeout=aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        ),
        # No per-request netrc/proxy-variable lookups (two thread hops per request in
        # aiohttp), and no cookies carried from one client's answer into another's request.
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def _control_tower_cache(
    settings: Settings, secrets: SecretResolver, builder: RouteBuilder
) -> ControlTowerCache:
    assert settings.control_tower is not None
    secret = (
        secrets.resolve(settings.control_tower_secret_ref)
        if settings.control_tower_secret_ref
        else None
    )
    client = ControlTowerClient(
        settings.control_tower,
        secret=secret,
        connect_timeout_s=settings.control_tower_connect_timeout,
        read_timeout_s=settings.control_tower_read_timeout,
        retries=settings.control_tower_retries,
        ca_bundle=settings.control_tower_ca,
    )
    return ControlTowerCache(
        client,
        builder,
        ttl_s=settings.manifest_ttl,
        max_stale_s=settings.manifest_max_stale,
        negative_ttl_s=settings.manifest_negative_ttl,
        lookup_rate=settings.unknown_project_rate,
        replica_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
    )
