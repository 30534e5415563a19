"""Chat completions through an APISIX route that fd2 applies itself.

Set up from the gateway module the inference module names (`apisix_gateway_module`), which the
core hands over as a dependency with its config resolved. Everything is compiled here, once;
a module without a route never reaches this file.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Final

from fd2.control.gateway import GatewayRoute, compile_apisix_route
from fd2.module import ModuleContext
from fd2.serving.disconnect import cancel_on_disconnect
from fd2.serving.errors import ConfigError
from fd2.serving.request import ClientDisconnected, Request
from fd2.serving.request_metrics import upstream_failed
from fd2.types import Message, Send
from fd2_inference.exchange import relay_json
from fd2_inference.metering import CHAT, OpenAIMeter, UsageReport, stream_report
from fd2_inference.route_transforms import prepare_route_chat
from fd2_inference.route_upstream import RouteUpstream
from fd2_inference.streaming import relay_stream
from fd2_inference.transforms import Defaults, upstream_body

GATEWAY_MODULE_TYPES: Final = frozenset({"api_gateway", "apisix_gateway"})


def gateway_route(context: ModuleContext, gateway_module: str, route_name: str) -> GatewayRoute:
    """The named route of the gateway module this module depends on, compiled."""
    dependency = context.dependencies.get(gateway_module)
    if dependency is None:
        raise ConfigError(
            f"apisix_gateway_module {gateway_module!r} was not handed to this module "
            "(is it a module of the same project?)"
        )
    if dependency.problem is not None:
        raise ConfigError(f"gateway module {gateway_module!r}: {dependency.problem}")
    if dependency.module_type not in GATEWAY_MODULE_TYPES:
        raise ConfigError(
            f"apisix_gateway_module {gateway_module!r} is a {dependency.module_type} module, "
            "not an api_gateway"
        )
    try:
        return compile_apisix_route(dependency.config, route_name)
    except ConfigError as exc:
        raise ConfigError(f"gateway module {gateway_module!r}: {exc.message}") from None


class RouteChat:
    """The /v1/chat/completions handler of a module served through a gateway route."""

    __slots__ = ("_defaults", "_logger", "_response_header", "_route", "meter", "upstream")

    def __init__(
        self,
        route: GatewayRoute,
        upstream: RouteUpstream,
        defaults: Defaults,
        logger: logging.Logger,
    ) -> None:
        self._route = route
        self.upstream = upstream
        # ai-proxy's model is sent whatever the request says, so a request may leave it out.
        self._defaults = (
            Defaults(
                model=route.model,
                max_tokens=defaults.max_tokens,
                temperature=defaults.temperature,
                top_p=defaults.top_p,
                system_prompt=defaults.system_prompt,
            )
            if route.model is not None
            else defaults
        )
        self.meter = OpenAIMeter(
            CHAT,
            partial(prepare_route_chat, defaults=self._defaults, route=route),
            self._defaults.max_tokens,
        )
        self._logger = logger
        spec = route.request_id
        # The core already answers with X-Request-ID; another header name is added here.
        self._response_header = (
            spec.header_name.encode("latin-1")
            if spec is not None and spec.include_in_response and spec.header_name != "x-request-id"
            else None
        )

    async def handle(self, request: Request, send: Send) -> None:
        try:
            original = await request.body()
            prepared = prepare_route_chat(await request.json_object(), self._defaults, self._route)
            call = self.upstream.build(
                upstream_body(original, prepared), request=request, stream=prepared.stream
            )
            rid, logger = request.request_id, self._logger
            logger.debug(
                "request %s: POST route %s model=%s stream=%s",
                rid,
                self._route.name,
                prepared.payload.get("model"),
                prepared.stream,
            )
            if self._response_header is not None:
                send = _with_header(send, self._response_header, rid.encode("latin-1"))
            if prepared.stream:
                usage = await stream_report(request, self.meter, prepared.payload, chat=True)
                work = relay_stream(
                    self.upstream, call, send, logger, rid, usage, partial(upstream_failed, request)
                )
            else:
                usage = UsageReport(request) if request.metered else None
                work = relay_json(self.upstream, call, send, logger, rid, usage)
            try:
                await cancel_on_disconnect(request, work)
            finally:
                self.upstream.release(call)
        except ClientDisconnected:
            self._logger.debug("request %s: client disconnected", request.request_id)

    def describe(self, gateway_module: str) -> dict[str, Any]:
        return {"apisix": {"gateway_module": gateway_module, **self._route.describe()}}


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (name, value)]
        await send(message)

    return sending
