"""The raw ASGI application: route each request to its module, render every error one way.

This is the hot path. Per request: one pass over the headers, a dict lookup for the route, the
route's handler (the module's own, or composed behind the route's steps: auth, limits). Anything
that can be decided earlier (handlers, steps, environments) was decided when the route table was
compiled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable

from fd2.admin.ops import ADMIN_PREFIX, CACHE_PREFIX, OPS_PATHS, OpsEndpoints
from fd2.config import Settings, settings_from_environment
from fd2.control.environments import canonical_environment, is_valid_environment_name
from fd2.control.manifests.placeholders import allow_environment_variables
from fd2.control.route_table import Route
from fd2.control.runtime import Runtime
from fd2.gc_tuning import tune_gc_for_serving
from fd2.module import Handler
from fd2.serving.cpu_scheduling import schedule_worker_threads
from fd2.serving.draining import current_drain, on_termination
from fd2.serving.errors import (
    INTERNAL_ERROR_BODY,
    BadRequest,
    Fd2Error,
    HeadersTooLarge,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    UnknownEnvironment,
)
from fd2.serving.health_listener import start_health_listener
from fd2.serving.key_routing import PREFIX as KEY_ROUTED_PREFIX
from fd2.serving.key_routing import KeyRouting
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.request_ids import request_id_from
from fd2.serving.request_metrics import UNKNOWN, UPSTREAM_ERRORS, RequestMetrics, multiprocess
from fd2.serving.resolved_routes import Lookup, ResolvedRoutes
from fd2.serving.responses import send_bytes, send_error
from fd2.serving.routing import (
    TYPED_PREFIXES,
    RouteKey,
    key_from_header,
    key_from_path,
    subdomain_candidates,
    typed_key,
)
from fd2.telemetry.log_context import REQUEST_ID, TRACE_ID, trace_id_from
from fd2.telemetry.logs import configure_logging
from fd2.telemetry.tracing import RequestSpan, Tracing, install
from fd2.types import Message, Receive, Scope, Send

_log = logging.getLogger("fd2.app")
_access = logging.getLogger("fd2.access")
_HEALTH_OK = b'{"status":"ok"}'
_HEALTH_DRAINING = b'{"status":"draining"}'


class Fd2App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self._ops: OpsEndpoints | None = None
        self._health: asyncio.Server | None = None
        self._base_domain = settings.base_domain.encode() if settings.base_domain else None
        self._default_environment = canonical_environment(settings.default_env)
        self._access_log = settings.access_log
        self._max_headers = settings.max_headers
        self._max_body = settings.max_body_bytes
        self._body_timeout = settings.body_timeout
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._drain_task: asyncio.Task[None] | None = None
        self._metrics: RequestMetrics | None = None
        self._log_context = settings.log_format == "json"
        self._tracing: Tracing | None = None
        self._key_routing = KeyRouting()  # routing (issue 13): /v1/... by project API key
        self._resolved = ResolvedRoutes()

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing the server the coroutine to run: no coroutine of its own
        # wrapped around every request's.
        kind = scope["type"]
        if kind == "http":
            return self._http(scope, receive, send)
        if kind == "lifespan":
            return self._lifespan(receive, send)
        return _ignored()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        client_id = project_module = environment = host = length = None
        hosts = 0
        headers = scope["headers"]
        for name, value in headers:
            if name == b"x-request-id":
                client_id = value
            elif name == b"x-project-module":
                project_module = value
            elif name == b"x-environment":
                environment = value
            elif name == b"host":
                host = value
                hosts += 1
            elif name == b"content-length":
                length = value
        request_id = request_id_from(client_id)
        span: RequestSpan | None = None
        if self._log_context:
            _bind_log_context(request_id, headers)
        started = False
        status = 0
        began = time.perf_counter()
        metrics = self._metrics
        route: Route | None = None
        request: Request | None = None
        endpoint = UNKNOWN
        counted = True
        streamed = False

        def send_with_id(message: Message) -> Awaitable[None]:
            # A plain function handing back the server's own awaitable: no coroutine frame per
            # message on the hot path.
            nonlocal started, status, streamed
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                if request is not None:  # the route's steps may add headers to any answer
                    request.status = status
                    message["headers"] = [
                        *message.get("headers", ()),
                        *request.answer_headers,
                        (b"x-request-id", request_id),
                    ]
                else:
                    message["headers"] = [
                        *message.get("headers", ()),
                        (b"x-request-id", request_id),
                    ]
            elif not streamed and route is not None and message.get("more_body"):
                # A body in parts is a stream: its first part is the first token's time, counted
                # once the server has it (Granian's `send` hands it on when called).
                streamed = True
                sending = send(message)
                if metrics is not None:
                    series = metrics.route(route.project, route.module, route.environment)
                    metrics.stream_started(series, time.perf_counter() - began)
                return sending
            return send(message)

        self._in_flight += 1
        try:
            if len(headers) > self._max_headers:
                raise HeadersTooLarge(
                    f"The request has more header fields than this gateway accepts "
                    f"({self._max_headers})."
                )
            if (hosts != 1 or not host) and scope.get("http_version") == "1.1":
                # RFC 9112 3.2: exactly one Host in HTTP/1.1; which of two counts would decide
                # the subdomain route, so neither does. (Granian fills a missing one in empty.)
                raise BadRequest("An HTTP/1.1 request needs exactly one Host header.", param="Host")
            path = scope["path"]
            if path == "/healthz":
                counted = False
                await send_bytes(
                    send_with_id,
                    503 if self._draining else 200,
                    _HEALTH_DRAINING if self._draining else _HEALTH_OK,
                )
                return
            if path in OPS_PATHS or path.startswith((ADMIN_PREFIX, CACHE_PREFIX)):
                counted = False
                if self._ops is None:
                    raise ServiceUnavailable("The gateway is starting; try again shortly.")
                await self._ops.handle(scope, send_with_id, receive)
                return
            if self._tracing is not None:  # requests for routes only: no probe or scrape
                span = self._tracing.start_request(headers, scope["method"])
                if self._log_context:
                    TRACE_ID.set(span.trace_id)
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
            if (
                project_module is None
                and raw_path.startswith(KEY_ROUTED_PREFIX)
                and self._by_project_key(raw_path, project_module, host)
            ):
                # routing (issue 13): no project in the path; the key and the body's model say.
                request = Request(
                    scope,
                    receive,
                    request_id=request_id.decode("ascii"),
                    project="",
                    module="",
                    environment="",
                    path=raw_path.decode("latin-1"),
                    content_length=_content_length(length),
                    max_body=self.settings.max_body_bytes,
                    body_timeout=self.settings.body_timeout,
                )
                routed = await self._key_routing.route(
                    self._runtime().builder.table, request, raw_path, environment, self._route
                )
                if isinstance(routed, bytes):  # GET /v1/models: the aliases the key may use
                    await send_bytes(send_with_id, 200, routed)
                    return
                key, route = routed
                request.project, request.module = key.project, key.module
                request.environment = route.environment
                # A path the route declares (a `/v1/jobs/*` pattern for a path below it).
                handler, endpoint = _handler(route, key, scope["method"])
            else:
                lookup = (
                    raw_path,
                    project_module,
                    host if self._base_domain is not None else None,
                    environment,
                    scope["method"],
                )
                runtime = self.runtime
                if runtime is None:
                    raise ServiceUnavailable("The gateway is starting; try again shortly.")
                resolved = self._resolved.get(runtime.builder.table, lookup)
                if resolved is not None:
                    route, key, handler, endpoint = resolved
                else:
                    # Assigned before the handler is looked up: an unknown endpoint or method
                    # is still counted and rendered as its route's.
                    route, key = await self._resolve(lookup)
                    handler, endpoint = _handler(route, key, scope["method"])
                    # The table the route came from (a Control Tower fetch may have swapped one
                    # in while it was resolved).
                    self._resolved.put(
                        self._runtime().builder.table, lookup, (route, key, handler, endpoint)
                    )
            if span is not None:
                span.route(route.project, route.module, route.environment, endpoint)
            if request is None:
                request = Request(
                    scope,
                    receive,
                    request_id=request_id.decode("ascii"),
                    project=key.project,
                    module=key.module,
                    environment=route.environment,
                    path=key.path,
                    content_length=_content_length(length),
                    max_body=self._max_body,
                    body_timeout=self._body_timeout,
                )
            loaded = route.loaded
            assert loaded is not None
            loaded.acquire()
            try:
                # The route's steps (auth, limits) are composed into its handlers already.
                await handler(request, send_with_id)
            finally:
                loaded.release()
            if not started and not request.disconnected:
                # Never leave it to the server, whose fallback is a bare text/plain 500.
                _log.error("request %s: the module sent no answer", request_id.decode("ascii"))
                await send_bytes(send_with_id, 500, INTERNAL_ERROR_BODY)
        except Fd2Error as exc:
            if metrics is not None and route is not None and isinstance(exc, UPSTREAM_ERRORS):
                # Before the answer started (on a route with limits the limits step counts it, as
                # it renders it); a stream that breaks later is reported by its module.
                metrics.count(
                    metrics.upstream_errors,
                    route.project,
                    route.module,
                    route.environment,
                    exc.code or "bad_gateway",
                )
            if not started:
                render = route.error_renderers.get(key.path) if route is not None else None
                rid = request_id.decode("ascii")
                await send_error(send_with_id, exc, render(exc, rid) if render else None)
            else:  # too late for an error response: the module should have ended the body itself
                _log.warning(
                    "request %s: %s after the response started",
                    request_id.decode("ascii"),
                    exc.code,
                )
        except ClientDisconnected:
            pass
        except Exception as exc:
            _log.error("request %s failed: %s", request_id.decode("ascii"), type(exc).__name__)
            if not started:
                await send_bytes(send_with_id, 500, INTERNAL_ERROR_BODY)
        finally:
            self._in_flight -= 1
            if self._draining and not self._in_flight:
                self._idle.set()
            if metrics is not None and counted:
                self._count(metrics, route, request, endpoint, status, streamed, began)
            if span is not None:
                span.end(status or 499, request)
            if self._access_log:
                _access.info(
                    "%s %s %s %d %.1fms",
                    request_id.decode("ascii"),
                    scope["method"],
                    _loggable_path(scope),
                    status,
                    (time.perf_counter() - began) * 1000,
                )
            if self._log_context:  # whatever runs next in this context is not this request
                REQUEST_ID.set(None)
                TRACE_ID.set(None)

    @staticmethod
    def _count(
        metrics: RequestMetrics,
        route: Route | None,
        request: Request | None,
        endpoint: str,
        status: int,
        streamed: bool,
        began: float,
    ) -> None:
        """The request's figures: labels from its route (one `unknown` series without one, so
        made-up project names create none); status 499 when no answer was sent (client gone)."""
        took = time.perf_counter() - began
        if route is None:
            metrics.finished(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, status or 499, took)
            return
        metrics.finished(
            route.project, route.module, route.environment, endpoint, status or 499, took
        )
        if streamed or (request is not None and request.usage is not None):
            series = metrics.route(route.project, route.module, route.environment)
            if streamed:
                metrics.stream_ended(series)
            if request is not None and request.usage is not None:
                metrics.used(series, request.usage)

    def _by_project_key(
        self, raw_path: bytes, project_module: bytes | None, host: bytes | None
    ) -> bool:
        """routing (issue 13): `/v1/...` with neither X-Project-Module nor a module subdomain
        is routed by the project API key it carries."""
        if project_module is not None or not raw_path.startswith(KEY_ROUTED_PREFIX):
            return False
        return (
            self._base_domain is None
            or host is None
            or not subdomain_candidates(host, self._base_domain)
        )

    async def _resolve(self, lookup: Lookup) -> tuple[Route, RouteKey]:
        """The route and key of a request routed by path, header or subdomain, the first time
        it is asked for on this table (`ResolvedRoutes` keeps them with their handler)."""
        # The host is in the lookup only when subdomains route (the only use of it here).
        raw_path, project_module, host, environment, _ = lookup
        key = await self._route_key(raw_path, project_module, host)
        return await self._route(key, environment)

    async def _route_key(
        self, raw_path: bytes, project_module: bytes | None, host: bytes | None
    ) -> RouteKey:
        if project_module is not None:
            return key_from_header(project_module, raw_path)
        if self._base_domain is not None and host is not None:
            candidates = subdomain_candidates(host, self._base_domain)
            if candidates:
                return await self._pick_subdomain(candidates, raw_path)
        return key_from_path(raw_path)

    async def _pick_subdomain(self, candidates: list[tuple[str, str]], raw_path: bytes) -> RouteKey:
        path = raw_path.decode("latin-1")
        runtime = self._runtime()
        for project, module in candidates:
            if runtime.builder.table.group(project, module) is not None:
                return RouteKey(project, module, path)
        if runtime.control_tower is not None:
            for project, module in candidates:
                try:
                    await runtime.control_tower.ensure(project)
                except NotFound:
                    continue
                if runtime.builder.table.group(project, module) is not None:
                    return RouteKey(project, module, path)
        project, module = candidates[0]
        return RouteKey(project, module, path)

    async def _route(self, key: RouteKey, environment: bytes | None) -> tuple[Route, RouteKey]:
        """The route for `key`, and the key as resolved (a typed path names its module later)."""
        runtime = self._runtime()
        group = runtime.builder.table.group(key.project, key.module)
        if group is None:
            if key.project not in runtime.builder.table.projects and runtime.control_tower:
                await runtime.control_tower.ensure(key.project)
                group = runtime.builder.table.group(key.project, key.module)
            if group is None and (typed := typed_key(key)) is not None:
                # `/{project}/rag/{module}/…`, the Control Tower's own paths for typed modules.
                group = runtime.builder.table.group(typed.project, typed.module)
                if group is not None and group.module_type in TYPED_PREFIXES[key.module]:
                    key = typed
                else:
                    group = None
            if group is None:
                if key.project in runtime.builder.table.projects:
                    raise NotFound(f"Unknown module {key.module!r} in project {key.project!r}.")
                raise NotFound(f"Unknown project {key.project!r}.")
        if environment is not None:
            name = environment.decode("latin-1")
            if not is_valid_environment_name(name):
                raise BadRequest("Invalid X-Environment header.", param="X-Environment")
            env = canonical_environment(name)
        elif group.default_environment is not None:
            env = group.default_environment
        elif len(group.by_environment) == 1:
            env = next(iter(group.by_environment))
        else:
            env = self._default_environment
        route = group.by_environment.get(env)
        if route is None:
            raise UnknownEnvironment(
                f"Environment {env!r} is not configured for {key.project}/{key.module}; "
                f"valid environments: {group.environment_list}.",
                param="X-Environment",
            )
        if route.unavailable is not None:
            raise route.unavailable
        return route, key

    def _runtime(self) -> Runtime:
        if self.runtime is None:
            raise ServiceUnavailable("The gateway is starting; try again shortly.")
        return self.runtime

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    configure_logging(self.settings.log_level, self.settings.log_format)
                    refused = schedule_worker_threads(
                        self.settings.cpu_scheduling, asyncio.get_running_loop()
                    )
                    if refused is not None:
                        _log.warning("%s; serving under the policy it started with", refused)
                    allow_environment_variables(self.settings.manifest_env_allow)
                    if self.settings.otel_endpoint is not None:
                        # Before the routes are compiled: their steps are wrapped in spans then.
                        self._tracing = Tracing(
                            self.settings.otel_endpoint, self.settings.otel_service_name
                        )
                        install(self._tracing)
                    self.runtime = await Runtime.start(self.settings)
                    self._ops = OpsEndpoints(self.runtime)
                    self._metrics = self.runtime.metrics.requests
                    if self.settings.health_port is not None:
                        self._health = await start_health_listener(
                            self.settings.host, self.settings.health_port
                        )
                    tune_gc_for_serving()
                    on_termination(asyncio.get_running_loop(), self._begin_drain)
                except Fd2Error as exc:
                    _log.error("start-up failed: %s", exc.message)
                    await send({"type": "lifespan.startup.failed", "message": exc.message})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._drain()
                if self._health is not None:
                    self._health.close()
                if self.runtime is not None:
                    await self.runtime.close()
                if self._tracing is not None:
                    self._tracing.shutdown()  # sends the spans still buffered
                if self._metrics is not None:
                    self._metrics.flush()  # the figures of this worker's last second
                if multiprocess():
                    # This worker's live gauges (active streams) leave the sum.
                    from prometheus_client.multiprocess import mark_process_dead

                    mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _begin_drain(self) -> None:
        """The worker was told to stop (SIGTERM or SIGINT): Granian stops accepting and lets the
        requests in flight finish; fd2 says it drains and bounds that by the shutdown timeout."""
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._drain_until_deadline())

    async def _drain(self) -> None:
        """At the lifespan shutdown: the drain begun at the signal has ended (Granian starts the
        shutdown once nothing is in flight); without one, drain now."""
        self._begin_drain()
        assert self._drain_task is not None
        await self._drain_task

    async def _drain_until_deadline(self) -> None:
        """Let in-flight requests and streams finish, for at most the shutdown timeout; then end
        the streams still running with an error event each."""
        self._draining = True
        drain = current_drain()
        timeout = self.settings.shutdown_timeout
        _log.info("shutdown: draining %d requests (at most %g s)", self._in_flight, timeout)
        if not self._in_flight:
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            _log.warning(
                "shutdown: %d requests still running at the deadline; %d streams and upstream "
                "calls ended with an error",
                self._in_flight,
                drain.cut(),
            )


def _bind_log_context(request_id: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """JSON logs: the request's id and trace id on every line logged while it runs (the
    request's own task, and the tasks it starts). The trace is the client's `traceparent`'s
    (the request span's, once tracing starts one)."""
    REQUEST_ID.set(request_id.decode("ascii"))
    traceparent = None
    for name, value in headers:
        if name == b"traceparent":
            traceparent = value
    TRACE_ID.set(trace_id_from(traceparent))


def _handler(route: Route, key: RouteKey, method: str) -> tuple[Handler, str]:
    endpoint = key.path
    methods = route.handlers.get(endpoint)
    head = endpoint
    while methods is None and head.count("/") > 1:
        # Paths with an id (`/v1/jobs/{id}`) are served by a `/v1/jobs/*` pattern: looked up
        # only when the exact path is not a route's.
        head = head.rsplit("/", 1)[0]
        endpoint = head + "/*"
        methods = route.handlers.get(endpoint)
    if methods is None:
        raise NotFound(f"Unknown endpoint {key.path} for module {key.project}/{key.module}.")
    handler = methods.get(method)
    if handler is None:
        raise MethodNotAllowed(
            f"Method {method} is not allowed for {key.path}.", allowed=tuple(methods)
        )
    return handler, endpoint


_UNPRINTABLE = re.compile(rb"[^\x21-\x7e]")


def _loggable_path(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded: `%0a` cannot forge a log line),
    with any byte outside printable ASCII written as `\\xNN`."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    if _UNPRINTABLE.search(raw) is None:
        return raw.decode("ascii")
    return _UNPRINTABLE.sub(lambda match: b"\\x%02x" % match[0][0], raw).decode("ascii")


async def _ignored() -> None:
    """What a scope fd2 does not serve (websocket: Granian's websockets are off) runs."""


def _content_length(value: bytes | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise BadRequest("Invalid Content-Length header.")
    return int(value)


def create_app() -> Fd2App:
    """Granian's factory target: settings come from the environment `fd2 serve` prepared."""
    return Fd2App(settings_from_environment())
