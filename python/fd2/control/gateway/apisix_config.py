"""The Control Tower's `api_gateway` (gateway_type `apisix`) config, typed for decoding.

The Control Tower owns this format (its APISIXGatewayModule, APISIXRoute, APISIXUpstream and
APISIXPlugin models) and APISIX owns the plugin schemas, so unknown fields are tolerated.
Values reached through placeholders may arrive as strings ("60"), hence lax conversion. Fields
that can hold a secret are typed `Any`: the core hands them over as `str` or `Secret`.

Only what one route needs is decoded: a sibling route or upstream that is malformed does not
stop this one from serving.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

from fd2.serving.errors import ConfigError

Positive = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]

T = TypeVar("T")


class RawGateway(msgspec.Struct, kw_only=True):
    gateway_type: str | None = None
    routes: list[dict[str, Any]] = msgspec.field(default_factory=list)
    upstreams: list[dict[str, Any]] = msgspec.field(default_factory=list)
    consumer: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    global_plugins: list[dict[str, Any]] | dict[str, Any] | None = None


class RawPlugin(msgspec.Struct, kw_only=True):
    """The list form of a plugin (the Control Tower's APISIXPlugin)."""

    name: str
    enabled: bool = True
    config: dict[str, Any] | None = None
    priority: int | None = None


class RawRoute(msgspec.Struct, kw_only=True):
    name: str | None = None
    id: str | int | None = None
    uri: str | None = None
    uris: list[str] | None = None
    methods: list[str] | None = None
    upstream_id: str | int | None = None
    upstream: dict[str, Any] | None = None
    service_id: str | int | None = None
    plugins: list[dict[str, Any]] | dict[str, Any] | None = None
    timeout: RawTimeout | None = None
    status: int | None = None
    host: str | None = None
    hosts: list[str] | None = None
    vars: Any = None
    remote_addrs: Any = None
    filter_func: str | None = None
    plugin_config_id: str | int | None = None


class RawTimeout(msgspec.Struct, kw_only=True):
    connect: Positive | None = None
    send: Positive | None = None
    read: Positive | None = None


class RawNode(msgspec.Struct, kw_only=True):
    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    weight: NonNegative = 1
    priority: int = 0


class RawUpstream(msgspec.Struct, kw_only=True):
    name: str | None = None
    id: str | int | None = None
    type: str = "roundrobin"
    nodes: dict[str, NonNegative] | list[RawNode] | None = None
    timeout: RawTimeout | None = None
    retries: NonNegative | None = None
    retry_timeout: float | None = None
    scheme: str | None = None
    pass_host: str = "pass"  # noqa: S105  # a mode's name
    upstream_host: str | None = None
    hash_on: str = "vars"
    key: str | None = None
    checks: Any = None
    health_check: Any = None
    discovery_type: str | None = None
    service_name: str | None = None
    tls: Any = None
    keepalive_pool: Any = None


class RawProxyRewrite(msgspec.Struct, kw_only=True):
    uri: str | None = None
    regex_uri: list[str] | None = None
    host: str | None = None
    headers: dict[str, Any] | None = None
    method: str | None = None
    scheme: str | None = None
    use_real_request_uri_unsafe: bool = False


class RawAiAuth(msgspec.Struct, kw_only=True):
    header: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    gcp: Any = None
    aws: Any = None


class RawAiOverride(msgspec.Struct, kw_only=True):
    endpoint: str | None = None
    llm_options: dict[str, Any] | None = None
    request_body: dict[str, Any] | None = None


class RawLegacyModel(msgspec.Struct, kw_only=True):
    """ai-proxy before APISIX 3.12: `model: {provider, name, options}`."""

    provider: str | None = None
    name: str | None = None
    options: dict[str, Any] | None = None


class RawAiProxy(msgspec.Struct, kw_only=True):
    provider: str | None = None
    auth: RawAiAuth | None = None
    options: dict[str, Any] | None = None
    override: RawAiOverride | None = None
    model: RawLegacyModel | None = None
    timeout: Annotated[int, msgspec.Meta(ge=1)] = 30000
    """Milliseconds, for each of connect, send and read."""
    ssl_verify: bool = True
    provider_conf: Any = None


class RawMessage(msgspec.Struct, kw_only=True):
    role: str
    content: str


class RawTemplateBody(msgspec.Struct, kw_only=True):
    model: str | None = None
    messages: list[RawMessage] = msgspec.field(default_factory=list)


class RawTemplate(msgspec.Struct, kw_only=True):
    name: str
    template: RawTemplateBody


class RawPromptTemplates(msgspec.Struct, kw_only=True):
    templates: list[RawTemplate]


class RawRequestId(msgspec.Struct, kw_only=True):
    header_name: str = "X-Request-Id"
    include_in_response: bool = True
    algorithm: str = "uuid"


class RawLimitCount(msgspec.Struct, kw_only=True):
    count: Count
    time_window: Positive
    key_type: str = "var"
    key: str = "remote_addr"
    rejected_code: Annotated[int, msgspec.Meta(ge=200, le=599)] = 503
    rejected_msg: str | None = None
    show_limit_quota_header: bool = True
    policy: str = "local"


class RawLimitReq(msgspec.Struct, kw_only=True):
    rate: Positive
    burst: Annotated[float, msgspec.Meta(ge=0)]
    key_type: str = "var"
    key: str = "remote_addr"
    rejected_code: Annotated[int, msgspec.Meta(ge=200, le=599)] = 503
    rejected_msg: str | None = None
    nodelay: bool = False
    policy: str = "local"


class RawJwtRoute(msgspec.Struct, kw_only=True):
    header: str = "authorization"
    query: str = "jwt"
    cookie: str = "jwt"
    hide_credentials: bool = False
    key_claim_name: str = "key"


class RawJwtConsumer(msgspec.Struct, kw_only=True):
    key: str
    secret: Any = None
    public_key: str | None = None
    algorithm: str = "HS256"
    base64_secret: bool = False
    lifetime_grace_period: NonNegative = 0


def decode(raw: Any, kind: type[T], where: str) -> T:
    """`raw` as `kind`; ConfigError naming `where` and msgspec's field path otherwise."""
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        # msgspec names the field and the expected type, never a string's value.
        raise ConfigError(f"{where} is invalid: {exc}") from None
