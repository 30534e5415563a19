"""OpenTelemetry tracing, an optional extra (`pip install fd2[otel]`), off unless
`--otel-endpoint` / `FD2_OTEL_ENDPOINT` names an OTLP/HTTP traces endpoint.

Off, it costs nothing: this module imports no OpenTelemetry package, the core's dispatch tests
one attribute, and no step or upstream call is wrapped (the wrapping is decided when a route is
compiled). On, each request gets a server span (its parent the client's W3C `traceparent`, when
it sent one) with the route's project, module and environment and the model the request was
estimated for; each step of the route a child span; each upstream attempt a client span, whose
`traceparent` goes upstream with the call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fd2.module import Handler
from fd2.serving.errors import ConfigError
from fd2.serving.request import Request
from fd2.types import Send

if TYPE_CHECKING:
    from fd2.pipeline.step import Step

_log = logging.getLogger("fd2.tracing")
_PROPAGATED = (b"traceparent", b"tracestate")


class RequestSpan:
    """One request's server span, made current for the request's task while it runs."""

    __slots__ = ("_context", "_span", "_token", "trace_id")

    def __init__(self, span: Any, token: object, context: Any) -> None:
        self._span = span
        self._token = token
        self._context = context
        self.trace_id = format(span.get_span_context().trace_id, "032x")

    def route(self, project: str, module: str, environment: str, endpoint: str) -> None:
        span = self._span
        span.update_name(f"{project}/{module} {endpoint}")
        span.set_attribute("fd2.project", project)
        span.set_attribute("fd2.module", module)
        span.set_attribute("fd2.environment", environment)
        span.set_attribute("http.route", endpoint)

    def end(self, status: int, request: Request | None) -> None:
        span = self._span
        span.set_attribute("http.response.status_code", status)
        if request is not None and request.cost is not None and request.cost.model:
            span.set_attribute("gen_ai.request.model", request.cost.model)
        if request is not None and request.usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", request.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", request.usage.completion_tokens)
        if status >= 500:
            span.set_status(self._context.error)
        span.end()
        self._context.detach(self._token)


class Tracing:
    """The worker's tracer provider and exporter; `exporter` replaces the OTLP one (tests)."""

    def __init__(self, endpoint: str, service_name: str, exporter: Any = None) -> None:
        try:
            from opentelemetry import context, trace
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError:
            raise ConfigError(
                "--otel-endpoint needs OpenTelemetry: install fd2 with its extra, "
                "`pip install 'fd2[otel]'`"
            ) from None
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        self._provider = provider
        self._tracer = provider.get_tracer("fd2")
        self._trace = trace
        self._context = _ContextOps(context, trace)
        self._propagator = TraceContextTextMapPropagator()

    def start_request(self, headers: list[tuple[bytes, bytes]], method: str) -> RequestSpan:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in _PROPAGATED
        }
        parent = self._propagator.extract(carrier) if carrier else None
        span = self._tracer.start_span(
            method, context=parent, kind=self._trace.SpanKind.SERVER, attributes=None
        )
        span.set_attribute("http.request.method", method)
        token = self._context.attach(self._trace.set_span_in_context(span))
        return RequestSpan(span, token, self._context)

    def step(self, step: Step) -> Step:
        """`step` with a span of its own (around it and what runs after it)."""
        return _TracedStep(step, f"fd2.step.{type(step).__name__.lower()}", self._tracer)

    @contextmanager
    def upstream(self, method: str, base_url: str) -> Iterator[dict[str, str]]:
        """A client span for one upstream attempt; yields the headers that carry it upstream.
        Only the upstream's host and port are recorded (a URL may carry a key in its query or
        its user part)."""
        where = urlsplit(base_url)
        with self._tracer.start_as_current_span(
            f"upstream {method}", kind=self._trace.SpanKind.CLIENT
        ) as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("server.address", where.hostname or "")
            if where.port is not None:
                span.set_attribute("server.port", where.port)
            headers: dict[str, str] = {}
            self._propagator.inject(headers)
            yield headers

    def answered(self, status: int) -> None:
        """The upstream's status, on the current (upstream attempt) span."""
        span = self._trace.get_current_span()
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(self._context.error)

    def shutdown(self) -> None:
        self._provider.shutdown()


class _ContextOps:
    """OpenTelemetry's context calls, kept where the import happened."""

    __slots__ = ("_context", "error")

    def __init__(self, context: Any, trace: Any) -> None:
        self._context = context
        self.error = trace.Status(trace.StatusCode.ERROR)

    def attach(self, value: Any) -> object:
        return self._context.attach(value)

    def detach(self, token: object) -> None:
        self._context.detach(token)


class _TracedStep:
    __slots__ = ("_name", "_step", "_tracer")

    def __init__(self, step: Step, name: str, tracer: Any) -> None:
        self._step = step
        self._name = name
        self._tracer = tracer

    async def __call__(self, request: Request, send: Send, call_next: Handler) -> None:
        with self._tracer.start_as_current_span(self._name):
            await self._step(request, send, call_next)


_current: Tracing | None = None


def current() -> Tracing | None:
    """The worker's tracing, or None when off (then nothing is traced or imported)."""
    return _current


def install(tracing: Tracing | None) -> None:
    global _current  # one per worker process
    if _current is not None and tracing is None:
        _current.shutdown()
    _current = tracing
