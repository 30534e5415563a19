"""The control plane of one worker: secrets, the shared upstream client, manifest sources and the
route builder, started at ASGI lifespan start-up and stopped at shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from pathlib import Path

import aiohttp

from fd2.auth.compiler import GateCompiler
from fd2.config import Settings
from fd2.environments import canonical_environment
from fd2.errors import ConfigError
from fd2.module import Timeouts
from fd2.registry import ModuleRegistry
from fd2.route_builder import RouteBuilder
from fd2.secrets import Secret, SecretResolver
from fd2.sources.control_tower import ControlTowerClient
from fd2.sources.local import LocalDirectorySource, LocalDirectoryWatcher
from fd2.sources.manifest_cache import ControlTowerCache
from fd2.sources.redis_sync import RedisManifestShare
from fd2.vault.pool import VaultPool
from fd2.vault.settings import settings_from_fd2

_log = logging.getLogger("fd2.runtime")


class Runtime:
    def __init__(
        self,
        *,
        settings: Settings,
        http: aiohttp.ClientSession,
        builder: RouteBuilder,
        control_tower: ControlTowerCache | None,
        control_tower_client: ControlTowerClient | None,
        tasks: list[asyncio.Task[None]],
        local: LocalDirectoryWatcher | None = None,
        redis: RedisManifestShare | None = None,
        admin_token: Secret | None = None,
        gates: GateCompiler | None = None,
        vault: VaultPool | None = None,
    ) -> None:
        self._gates = gates
        self.vault = vault
        self.settings = settings
        self.http = http
        self.builder = builder
        self.control_tower = control_tower
        self._control_tower_client = control_tower_client
        self._tasks = tasks
        self.local = local
        self.redis = redis
        self.admin_token = admin_token

    def ready(self) -> bool:
        """At least one manifest source is usable: the directory, the Control Tower, or
        projects still within their allowed staleness."""
        if self.local is not None and self.local.usable:
            return True
        cache = self.control_tower
        if cache is None:
            return False
        return bool(cache.reachable) or bool(self.builder.table.projects)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        if not settings.manifests and not settings.control_tower:
            raise ConfigError(
                "No manifest source: give --manifests DIR and/or --control-tower URL."
            )
        secrets = SecretResolver(
            config_file=Path(settings.secrets_file) if settings.secrets_file else None
        )
        vault = VaultPool(
            secrets, settings_from_fd2(settings), default_ttl_s=settings.vault_secret_ttl
        )
        # aiohttp, not httpx, carries upstream traffic: measured here, httpx's connection pool
        # gave ~800 requests/s at 32 concurrent requests where aiohttp gave ~8,000 (docs/).
        http = aiohttp.ClientSession(
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
        gates = GateCompiler.from_settings(settings, secrets=secrets, http=http)
        builder = RouteBuilder(
            registry=ModuleRegistry(allowed_packages=settings.module_packages),
            secrets=secrets,
            http=http,
            default_environment=canonical_environment(settings.default_env),
            base_timeouts=Timeouts(
                connect_s=settings.connect_timeout,
                read_s=settings.read_timeout,
                total_s=settings.total_timeout,
            ),
            environ=os.environ,
            gates=gates,
            vault=vault,
        )
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = [loop.create_task(vault.run(builder.refresh_secrets))]
        if settings.manifests:
            directory = Path(settings.manifests)
            if not await asyncio.to_thread(directory.is_dir):
                raise ConfigError(f"--manifests {directory} is not a directory")
            watcher = LocalDirectoryWatcher(LocalDirectorySource(directory), builder)
            await watcher.sync()
            tasks.append(loop.create_task(watcher.run(settings.manifest_poll)))
        else:
            watcher = None
        cache = client = share = None
        if settings.control_tower:
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
            cache = ControlTowerCache(
                client,
                builder,
                ttl_s=settings.manifest_ttl,
                max_stale_s=settings.manifest_max_stale,
                negative_ttl_s=settings.manifest_negative_ttl,
                lookup_rate=settings.unknown_project_rate,
                replica_id=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            )
            tasks.append(loop.create_task(cache.run()))
            if settings.redis_url:
                share = RedisManifestShare(settings.redis_url, cache)
                cache.share = share
                tasks.append(loop.create_task(share.run()))
        if settings.redis_url and cache is None:
            _log.info("--redis-url: no Control Tower, so Redis carries only limits and keys")
        admin_token = (
            secrets.resolve(settings.admin_token_ref) if settings.admin_token_ref else None
        )
        _log.info("ready: %d routes from the manifest directory", len(builder.table))
        return cls(
            settings=settings,
            http=http,
            builder=builder,
            control_tower=cache,
            control_tower_client=client,
            tasks=tasks,
            local=watcher,
            redis=share,
            admin_token=admin_token,
            gates=gates,
            vault=vault,
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.builder.close()
        if self._control_tower_client is not None:
            await self._control_tower_client.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.http.close()
        if self._gates is not None:
            await self._gates.aclose()
        if self.vault is not None:
            await asyncio.to_thread(self.vault.close)
