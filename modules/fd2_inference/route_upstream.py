"""The upstream of an APISIX route as fd2 applies it: weighted nodes, path, headers, retries.

Built once at set-up from a compiled `GatewayRoute`: node URLs, the header list (the module's
own Bearer key, then the route's set/add/remove actions, secrets revealed here only) and the time
limits. Per request only the headers holding variables are put together and a node is picked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, cast
from urllib.parse import urlencode

import aiohttp

from fd2.control.gateway.route import GatewayRoute, HeaderOp, TextPart, Variable
from fd2.control.gateway.variables import has_variables, render, static_text, variable_value
from fd2.control.secrets import Secret
from fd2.module import Timeouts
from fd2.serving.request import Request
from fd2.telemetry.scrub import Scrubber, credential_values
from fd2_inference.balancer import make_picker
from fd2_inference.upstream import NOT_SENT, UpstreamCall

_JSON: Final = "application/json"
_EVENT_STREAM: Final = "text/event-stream"

Pairs = list[tuple[str, str]]


class RouteCall(UpstreamCall):
    """A call on a route: the balancing key it was made with and the node it went to."""

    __slots__ = ("key", "node")

    def __init__(self, method: str, body: bytes | None, headers: Pairs, key: str) -> None:
        super().__init__(method, "", body, headers)
        self.key = key
        self.node = -1


class RouteUpstream:
    __slots__ = (
        "_attempts",
        "_dynamic",
        "_key",
        "_picker",
        "_request_id_headers",
        "_secrets",
        "_session",
        "_static",
        "_timeout",
        "_urls",
        "total_s",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession,
        route: GatewayRoute,
        api_key: str | None,
        timeouts: Timeouts,
    ) -> None:
        self._session = session
        query = urlencode([(k, static_text((v,))) for k, v in route.query])
        suffix = route.path + (f"?{query}" if query else "")
        self._urls = tuple(node.origin + suffix for node in route.nodes)
        self._picker = make_picker(route.balancer.type, [node.weight for node in route.nodes])
        self._attempts = 1 + route.retries
        self._key = _balancing_variable(route) if route.balancer.type == "chash" else None
        entries = compose_headers(api_key, route.host, route.headers)
        self._secrets = route_secrets(api_key, route)
        static = [(name, static_text(parts)) for name, parts in entries if not has_variables(parts)]
        self._dynamic = [(name, parts) for name, parts in entries if has_variables(parts)]
        # A header the route sets itself is not sent a second time by fd2.
        named = {name for name, _ in entries}
        self._static = {
            (stream, has_body): [
                *static,
                *(
                    [("accept", _EVENT_STREAM if stream else _JSON)]
                    if "accept" not in named
                    else []
                ),
                *([("content-type", _JSON)] if has_body and "content-type" not in named else []),
            ]
            for stream in (False, True)
            for has_body in (False, True)
        }
        spec = route.request_id
        id_headers = {"x-request-id", spec.header_name if spec is not None else "x-request-id"}
        self._request_id_headers = tuple(sorted(id_headers - named))
        own = route.timeouts
        connect = own.connect_s if own.connect_s is not None else timeouts.connect_s
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect,
            sock_connect=connect,
            sock_read=own.read_s if own.read_s is not None else timeouts.read_s,
        )
        self.total_s = timeouts.total_s

    @property
    def authenticated(self) -> bool:
        return any(name == "authorization" for name, _ in self._static[False, False]) or any(
            name == "authorization" for name, _ in self._dynamic
        )

    def scrubber(self, call: UpstreamCall) -> Scrubber:
        """Takes every secret the route sends (its key, secret header values and query values)
        and any credential header `call` carried out of an answer."""
        return Scrubber((*self._secrets, *credential_values(call.headers)))

    def build(self, body: bytes | None, *, request: Request, stream: bool) -> RouteCall:
        headers = list(self._static[stream, body is not None])
        for name, parts in self._dynamic:
            value = render(parts, request)
            if value:  # nginx sends no header whose value is empty
                headers.append((name, value))
        headers.extend((name, request.request_id) for name in self._request_id_headers)
        key = _key_of(self._key, request) if self._key is not None else ""
        return RouteCall("POST", body, headers, key)

    async def open(self, call: UpstreamCall) -> aiohttp.ClientResponse:
        """Send `call` to a node; on a connection that cannot be made (the node never saw the
        request), try again up to `retries` times, on other nodes while there are any."""
        route_call = cast("RouteCall", call)
        tried: list[int] = []
        attempt = 1
        while True:
            index = self._picker.pick(route_call.key, tried)
            route_call.node = index
            try:
                return await self._session.request(
                    call.method,
                    self._urls[index],
                    data=call.body,
                    headers=call.headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except NOT_SENT:
                self.release(route_call)
                if attempt >= self._attempts:
                    raise
                tried.append(index)
                attempt += 1

    def release(self, call: RouteCall) -> None:
        """The call has ended (its node's in-flight count, for least_conn)."""
        if call.node >= 0:
            self._picker.release(call.node)
            call.node = -1


def compose_headers(
    api_key: str | None, host: str | None, ops: Sequence[HeaderOp]
) -> list[tuple[str, tuple[TextPart, ...]]]:
    """The module's own upstream headers with the route's actions applied, in order.

    The caller's headers are never forwarded (its credential is for the gateway), so `add` on a
    header fd2 does not send sets it, and `remove` can take the module's own Bearer key away.
    """
    entries: list[tuple[str, tuple[TextPart, ...]]] = []
    if api_key:
        entries.append(("authorization", (f"Bearer {api_key}",)))
    for op in ops:
        if op.action in ("set", "remove"):
            entries = [entry for entry in entries if entry[0] != op.name]
        if op.action in ("set", "add"):
            entries.append((op.name, op.value))
    if host is not None:
        entries.append(("host", (host,)))
    return entries


def route_secrets(api_key: str | None, route: GatewayRoute) -> tuple[str, ...]:
    """Every secret value a route's requests carry upstream, wherever the route puts it."""
    values = [api_key] if api_key else []
    for op in route.headers:
        values += [part.reveal() for part in op.value if isinstance(part, Secret)]
    values += [value.reveal() for _, value in route.query if isinstance(value, Secret)]
    return tuple(values)


def _balancing_variable(route: GatewayRoute) -> Variable | str:
    balancer = route.balancer
    if balancer.hash_on == "header":
        return Variable("http", balancer.key)
    if balancer.hash_on == "arg":
        return Variable("arg", balancer.key)
    if balancer.hash_on == "cookie":
        return balancer.key  # a cookie's name
    return Variable("remote_addr")


def _key_of(source: Variable | str, request: Request) -> str:
    if isinstance(source, Variable):
        return variable_value(source, request)
    cookies = request.header(b"cookie")
    if cookies is None:
        return ""
    for item in cookies.decode("latin-1").split(";"):
        name, _, value = item.strip().partition("=")
        if name == source:
            return value
    return ""
