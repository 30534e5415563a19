"""The control plane of one worker: secrets, the shared upstream client, manifest sources and the
route builder, started at ASGI lifespan start-up and stopped at shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import aiohttp

from fd2.config import Settings
from fd2.environments import canonical_environment
from fd2.errors import ConfigError
from fd2.module import Timeouts
from fd2.registry import ModuleRegistry
from fd2.route_builder import RouteBuilder
from fd2.secrets import SecretResolver
from fd2.sources.control_tower import ControlTowerCache, ControlTowerClient
from fd2.sources.local import LocalDirectorySource, LocalDirectoryWatcher
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
        vault: VaultPool | None = None,
    ) -> None:
        self.vault = vault
        self.settings = settings
        self.http = http
        self.builder = builder
        self.control_tower = control_tower
        self._control_tower_client = control_tower_client
        self._tasks = tasks

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
        cache = client = None
        if settings.control_tower:
            secret = (
                secrets.resolve(settings.control_tower_secret_ref)
                if settings.control_tower_secret_ref
                else None
            )
            client = ControlTowerClient(settings.control_tower, secret=secret)
            cache = ControlTowerCache(client, builder, ttl_s=settings.manifest_ttl)
            tasks.append(loop.create_task(cache.run()))
        _log.info("ready: %d routes from the manifest directory", len(builder.table))
        return cls(
            settings=settings,
            http=http,
            builder=builder,
            control_tower=cache,
            control_tower_client=client,
            tasks=tasks,
            vault=vault,
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.builder.close()
        if self._control_tower_client is not None:
            await self._control_tower_client.aclose()
        await self.http.close()
        if self.vault is not None:
            await asyncio.to_thread(self.vault.close)
