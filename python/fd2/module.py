"""The contract every fd2 module implements, and the context it is set up from.

A module is a Python class. fd2 creates one instance per (project, module, environment), calls
`setup(context)` once with everything already resolved (config, secrets, upstream URLs) and the
worker's shared means (the upstream HTTP client, Redis, a metrics registry, supervised background
tasks, in-process handles to the modules it depends on, a logger), then routes requests to the
handlers `endpoints()` returns. Modules never fetch their own secrets and never read global
configuration.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import msgspec

from fd2.control.secrets import Secret
from fd2.control.tasks import Supervisor
from fd2.metering import Meter
from fd2.serving.request import Request
from fd2.telemetry.module_metrics import ModuleMetrics
from fd2.types import Send

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from fd2.serving.errors import Fd2Error
    from fd2.serving.module_calls import ModuleHandle

Handler = Callable[[Request, Send], Awaitable[None]]
ErrorRenderer = Callable[["Fd2Error", str], bytes]
"""The body of an error answer in an endpoint's own API shape (e.g. Anthropic's, on
`/v1/messages`): given the error and the request id, the bytes to send with its status and
headers."""
"""Answers one request by writing a complete response to `send` (or raising an Fd2Error)."""


class Timeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Upstream time limits in seconds: to connect, between bytes read, and for the whole call."""

    connect_s: float = 5.0
    read_s: float = 120.0
    total_s: float = 600.0


class UpstreamEndpoints(msgspec.Struct, frozen=True, kw_only=True):
    """Base URLs of the upstream service for the environment being served."""

    primary: str
    fallback: str | None = None


class Health(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    detail: str = ""


class ModuleDependency(msgspec.Struct, frozen=True, kw_only=True):
    """Another module of the same project that this one names in its `dependencies`."""

    name: str
    module_type: str
    config: Mapping[str, Any]
    """Resolved for the same environment: placeholders substituted, secret references `Secret`s."""
    problem: str | None = None
    """Why the config could not be resolved (then `config` is empty). A module that cannot work
    without this dependency raises `ConfigError` in `setup`, which makes it answer 503."""


class ModuleContext(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a module instance may use: resolved for one (project, module, environment)."""

    project: str
    module: str
    environment: str
    module_type: str
    config: Mapping[str, Any]
    """The module's config with placeholders resolved; secret fields are `Secret` values."""
    references: Mapping[str, Secret | None]
    """Named references (single-module manifests); None for optional ones that are absent."""
    endpoints: UpstreamEndpoints | None
    timeouts: Timeouts
    http: aiohttp.ClientSession
    """The shared, pooled upstream client (keep-alive connections). Do not close it."""
    logger: logging.Logger
    dependencies: Mapping[str, ModuleDependency] = msgspec.field(default_factory=dict)
    """The modules named in the manifest's `dependencies`, by name (e.g. `auth` → jwt_config)."""
    modules: Mapping[str, ModuleHandle] = msgspec.field(default_factory=dict)
    """The same dependencies, callable in process: `await context.modules["chat"].call("POST",
    "/v1/chat/completions", body)` runs that module's route for this environment
    (`fd2.serving.module_calls`)."""
    redis: Redis | None = None
    """The worker's one Redis client (`--redis-url`), shared with limits and manifest sharing;
    None without Redis. Do not close it. Its commands time out after `--redis-timeout`."""
    metrics: ModuleMetrics = msgspec.field(default_factory=ModuleMetrics.unregistered)
    """Where the module registers its metrics, shown by `GET /metrics`
    (`fd2.telemetry.module_metrics`)."""
    tasks: Supervisor = msgspec.field(default_factory=Supervisor)
    """Background work of this instance: `tasks.spawn(name, run)` / `tasks.every(name, s, tick)`;
    a task that fails is restarted with back-off, and all stop before `close()` is called."""


class Module(abc.ABC):
    """Base class of fd2 modules."""

    module_types: ClassVar[tuple[str, ...]] = ()
    """The manifest `module_type` values this class serves (used by the registry)."""

    secret_fields: ClassVar[frozenset[str]] = frozenset()
    """Config keys whose values are secret references, resolved to `Secret` before set-up."""

    cache_key_ignores: ClassVar[frozenset[str]] = frozenset()
    """Top-level request fields that change how an answer is delivered or attributed, not what
    it says (for OpenAI: `user`, `stream`, `stream_options`): left out of response cache keys."""

    @abc.abstractmethod
    async def setup(self, context: ModuleContext) -> None:
        """Prepare to serve. Raise `fd2.serving.errors.ConfigError` if the config cannot be
        served."""

    @abc.abstractmethod
    def endpoints(self) -> Mapping[str, Mapping[str, Handler]]:
        """Handlers by endpoint path (e.g. `/v1/chat/completions`), then by HTTP method."""

    def meters(self) -> Mapping[str, Meter]:
        """Meters by endpoint path (fd2.metering): how the core estimates a request's cost
        before it is sent. Called once, after `endpoints()`. An endpoint without one costs no
        tokens, and callers limited to some models may only read from it."""
        return {}

    def error_renderers(self) -> Mapping[str, ErrorRenderer]:
        """By endpoint path, how errors on that endpoint are written when its API is not
        OpenAI's — the core's own refusals included (401, 403, 429 from the route's steps).
        Endpoints not named here answer errors in OpenAI's shape. Called once, at set-up."""
        return {}

    async def health(self) -> Health:
        return Health(ok=True)

    def describe(self) -> Mapping[str, Any]:
        """What `/admin/routes` shows about this instance beside its status: JSON-safe values
        decided at set-up, never a secret. Nothing by default."""
        return {}

    async def close(self) -> None:  # noqa: B027  # optional hook: modules without resources skip it
        """Release what `setup` acquired. Called once, after the last request has finished."""
