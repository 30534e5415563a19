"""`jwt-auth`, `limit-count`, `limit-req` and `request-id`, compiled into plain values.

fd2's gate enforces auth and limits; these only say what the route asks for, so the gateway's
auth compiler can build the gate from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from fd2.control.gateway.apisix_config import (
    RawJwtConsumer,
    RawJwtRoute,
    RawLimitCount,
    RawLimitReq,
    RawRequestId,
    decode,
)
from fd2.control.gateway.plugins import plugin_map
from fd2.control.gateway.rewrite import check_text
from fd2.control.gateway.route import JwtAuthSpec, LimitRule, RequestIdSpec
from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError

_HMAC: Final = ("HS256", "HS384", "HS512")
_ASYMMETRIC: Final = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA")


def compile_jwt_auth(
    raw: Mapping[str, Any], consumer: Mapping[str, Any] | None, where: str
) -> JwtAuthSpec:
    route = decode(dict(raw), RawJwtRoute, where)
    bare = JwtAuthSpec(
        header=route.header.lower(),
        query=route.query,
        cookie=route.cookie,
        key_claim_name=route.key_claim_name,
        hide_credentials=route.hide_credentials,
    )
    credential = _consumer_credential(consumer)
    if credential is None:
        # Still a JWT route: the auth compiler decides where its verification key comes from.
        return bare
    label = "consumer.plugins.jwt-auth"
    entry = decode(credential, RawJwtConsumer, label)
    algorithm = entry.algorithm
    if algorithm not in _HMAC + _ASYMMETRIC:
        raise ConfigError(f"{label}.algorithm {algorithm!r} is not supported")
    secret: Secret | None = None
    if algorithm in _HMAC:
        if entry.secret is None or entry.secret == "":
            raise ConfigError(f"{label} has no secret for {algorithm}")
        value = check_text(entry.secret, f"{label}.secret")
        secret = value if isinstance(value, Secret) else Secret(value, f"{label}.secret")
    elif not entry.public_key:
        raise ConfigError(f"{label} has no public_key for {algorithm}")
    username = consumer.get("username") if consumer is not None else None
    return msgspec.structs.replace(
        bare,
        consumer=username if isinstance(username, str) else None,
        key=entry.key,
        secret=secret,
        public_key=entry.public_key,
        algorithm=algorithm,
        base64_secret=entry.base64_secret,
        lifetime_grace_period=entry.lifetime_grace_period,
    )


def compile_limit_count(raw: Mapping[str, Any], where: str) -> LimitRule:
    config = decode(dict(raw), RawLimitCount, where)
    return LimitRule(
        plugin="limit-count",
        limit=config.count,
        window_s=float(config.time_window),
        key_type=config.key_type,
        key=config.key,
        rejected_code=config.rejected_code,
        rejected_msg=config.rejected_msg,
        show_headers=config.show_limit_quota_header,
    )


def compile_limit_req(raw: Mapping[str, Any], where: str) -> LimitRule:
    config = decode(dict(raw), RawLimitReq, where)
    # resty.limit.req admits `burst` requests beyond the one the rate allows, then one every
    # 1/rate seconds: a bucket of burst + 1 refilled at `rate` per second.
    size = int(config.burst) + 1
    return LimitRule(
        plugin="limit-req",
        limit=size,
        window_s=size / config.rate,
        key_type=config.key_type,
        key=config.key,
        rejected_code=config.rejected_code,
        rejected_msg=config.rejected_msg,
        rate=config.rate,
        burst=config.burst,
    )


def compile_request_id(raw: Mapping[str, Any], where: str) -> RequestIdSpec:
    config = decode(dict(raw), RawRequestId, where)
    name = config.header_name.strip().lower()
    if not name or any(c in name for c in " :\t\r\n"):
        raise ConfigError(f"{where}.header_name is not a valid header name")
    return RequestIdSpec(name, config.include_in_response, config.algorithm)


def _consumer_credential(consumer: Mapping[str, Any] | None) -> Any:
    if consumer is None:
        return None
    plugins = plugin_map(consumer.get("plugins"), "consumer.plugins")
    return plugins.get("jwt-auth")
