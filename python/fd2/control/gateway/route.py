"""The compiled form of one APISIX route: immutable values the inference module serves from.

Built once per (project, module, environment) by `compile_apisix_route`; nothing here is looked
up or parsed per request. Secret values stay `Secret` (their repr never shows them), and
`describe()` is what `/admin/routes` shows: names, numbers and plugin lists, never a value that
came from a secret.
"""

from __future__ import annotations

from typing import Any

import msgspec

from fd2.control.secrets import Secret


class Variable(msgspec.Struct, frozen=True):
    """An nginx-style variable in a proxy-rewrite header value, resolved per request."""

    kind: str
    """`http` (a request header), `arg` (a query parameter), `remote_addr`, `request_id`,
    `request_method`."""
    name: str = ""
    """The header (lower case, dashes) or query parameter it reads."""


TextPart = str | Secret | Variable
"""A piece of a header value: literal text, a secret value, or a per-request variable."""


class HeaderOp(msgspec.Struct, frozen=True):
    """One header action of a route, applied in order to the module's own upstream headers."""

    action: str
    """`set` (replace), `add` (append another value) or `remove`."""
    name: str
    """Lower case."""
    value: tuple[TextPart, ...] = ()


class Node(msgspec.Struct, frozen=True):
    scheme: str
    host: str
    port: int
    weight: int

    @property
    def origin(self) -> str:
        """`scheme://host:port`, IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Balancer(msgspec.Struct, frozen=True):
    type: str
    """`roundrobin` (smooth weighted), `chash` (consistent hashing) or `least_conn`."""
    hash_on: str = "vars"
    """For chash: `vars` (a variable: remote_addr, http_*, arg_*), `header` or `cookie`."""
    key: str = "remote_addr"


class UpstreamTimeouts(msgspec.Struct, frozen=True):
    """Seconds; None where the manifest says nothing (fd2's own limit then applies)."""

    connect_s: float | None = None
    send_s: float | None = None
    read_s: float | None = None


class PromptTemplate(msgspec.Struct, frozen=True):
    """One `ai-prompt-template` template: `{{variable}}` placeholders in message contents."""

    name: str
    model: str | None
    messages: tuple[tuple[str, str], ...]
    """(role, content) pairs, placeholders still in."""
    variables: frozenset[str]


class RequestIdSpec(msgspec.Struct, frozen=True):
    header_name: str
    """Lower case."""
    include_in_response: bool = True
    algorithm: str = "uuid"
    """Kept for display: fd2's own request id is what travels."""


class JwtAuthSpec(msgspec.Struct, frozen=True, kw_only=True):
    """`jwt-auth` on the route with its consumer's credential, for the gateway's auth compiler.

    A token is accepted only when its `key_claim_name` claim (default `key`) equals `key` and it
    verifies with `secret` (HS*) or `public_key` (RS*/ES*). `key`/`secret` are None when the gateway
    module declares no consumer with `jwt-auth`: the route still requires a JWT.
    """

    consumer: str | None = None
    key: str | None = None
    secret: Secret | None = None
    public_key: str | None = None
    algorithm: str = "HS256"
    base64_secret: bool = False
    lifetime_grace_period: int = 0
    header: str = "authorization"
    query: str = "jwt"
    cookie: str = "jwt"
    key_claim_name: str = "key"
    hide_credentials: bool = False


class LimitRule(msgspec.Struct, frozen=True, kw_only=True):
    """A `limit-count` or `limit-req` plugin as plain numbers: `limit` requests per `window_s`.

    limit-count: `count` per `time_window`. limit-req: a burst of `burst + 1` at once, then `rate`
    per second, which is a GCRA bucket of `burst + 1` per `(burst + 1) / rate` seconds.
    """

    plugin: str
    kind: str = "requests"
    limit: int
    window_s: float
    key_type: str = "var"
    key: str = "remote_addr"
    rejected_code: int = 503
    rejected_msg: str | None = None
    show_headers: bool = True
    rate: float | None = None
    burst: float | None = None


class GatewayRoute(msgspec.Struct, frozen=True, kw_only=True):
    """One APISIX route compiled for fd2, which applies it itself instead of calling APISIX."""

    name: str
    uri: str
    methods: tuple[str, ...]
    nodes: tuple[Node, ...]
    balancer: Balancer
    path: str
    """The upstream request path (proxy-rewrite `uri`/`regex_uri`, else the route's `uri`)."""
    query: tuple[tuple[str, str | Secret], ...] = ()
    host: str | None = None
    """The Host header to send; None: the node's own host."""
    headers: tuple[HeaderOp, ...] = ()
    timeouts: UpstreamTimeouts = UpstreamTimeouts()
    retries: int = 0
    """Extra attempts on another node when a connection cannot be made."""
    provider: str | None = None
    """ai-proxy's provider (then `nodes` is its endpoint)."""
    model: str | None = None
    """ai-proxy's `options.model`: every request goes upstream with this model."""
    body_options: tuple[tuple[str, Any], ...] = ()
    """ai-proxy's other `options`, written over the request body's fields."""
    templates: tuple[PromptTemplate, ...] = ()
    request_id: RequestIdSpec | None = None
    jwt_auth: JwtAuthSpec | None = None
    limits: tuple[LimitRule, ...] = ()
    implemented_plugins: tuple[str, ...] = ()
    unimplemented_plugins: tuple[str, ...] = ()
    """Plugins the route names that fd2 does not apply (logged once, shown in /admin/routes)."""
    ignored: tuple[str, ...] = ()
    """Route, upstream and plugin fields fd2 does not apply, as `where.field`."""

    @property
    def unimplemented_auth_plugins(self) -> tuple[str, ...]:
        """Unimplemented plugins that decide who may call: ignoring them would open the route."""
        return tuple(name for name in self.unimplemented_plugins if name in ACCESS_PLUGINS)

    def template(self, name: str) -> PromptTemplate | None:
        for template in self.templates:
            if template.name == name:
                return template
        return None

    def describe(self) -> dict[str, Any]:
        """JSON-safe, secret-free summary for /admin/routes."""
        described: dict[str, Any] = {
            "route": self.name,
            "uri": self.uri,
            "upstream": {
                "type": self.balancer.type,
                "nodes": {node.origin: node.weight for node in self.nodes},
                "path": self.path,
                "retries": self.retries,
            },
            "plugins": list(self.implemented_plugins),
            "unimplemented_plugins": list(self.unimplemented_plugins),
        }
        if self.provider is not None:
            described["ai_proxy"] = {"provider": self.provider, "model": self.model}
        if self.jwt_auth is not None:
            described["jwt_auth"] = {
                "consumer_key": self.jwt_auth.key,
                "algorithm": self.jwt_auth.algorithm,
            }
        if self.limits:
            described["limits"] = [
                {"plugin": rule.plugin, "limit": rule.limit, "window_s": rule.window_s}
                for rule in self.limits
            ]
        if self.ignored:
            described["ignored"] = list(self.ignored)
        return described


ACCESS_PLUGINS = frozenset(
    {
        "acl",
        "authz-casbin",
        "authz-casdoor",
        "authz-keycloak",
        "basic-auth",
        "cas-auth",
        "consumer-restriction",
        "forward-auth",
        "hmac-auth",
        "ip-restriction",
        "jwe-decrypt",
        "key-auth",
        "ldap-auth",
        "multi-auth",
        "opa",
        "openid-connect",
        "referer-restriction",
        "ua-restriction",
        "uri-blocker",
        "wolf-rbac",
    }
)
"""APISIX plugins that authenticate or refuse callers."""
