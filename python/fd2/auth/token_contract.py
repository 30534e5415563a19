"""The JWT service's front-door contract, as pure functions: what a client may post to
`/{project}/{jwt module}/token`, what fd2 sends the JWT service, and which answers come back.

The JWT service trusts whoever calls it: an `api_key_config` in the request decides the token's
claims, a `secret` the key that signs it, and `dynamic` claims name Python functions it runs. So
the client sends only its login; the claims come from the jwt_config module, resolved for the
environment being served.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

import msgspec
import orjson

from fd2.auth.jwe import content_key
from fd2.control.secrets import Secret
from fd2.serving.errors import BadRequest, ConfigError, Fd2Error, UpstreamError

LOGIN_FIELDS: Final = ("username", "password")
_MAX_LOGIN_CHARS: Final = 4096
# Claims the JWT service (flask-jwt-extended) sets itself; a claim of the same name would
# override them: `type` would make refresh tokens pass as access tokens, `exp` outlive its hours.
RESERVED_CLAIMS: Final = frozenset({"exp", "nbf", "iat", "jti", "type", "fresh", "sub"})
# What the JWT service reads from an inline `api_key_config`; everything else of the module's
# config (its service URL, verification secret, issuer...) is fd2's and stays here.
_FORWARDED_CONFIG: Final = ("id", "owner", "metadata")


class KeyNotAllowed(Fd2Error):
    status = 403
    error_type = "invalid_request_error"
    code = "permission_denied"


class Login(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    password: str
    api_key: str | None = None

    def __repr__(self) -> str:
        return f"Login({self.username!r}, password=***, api_key={'***' if self.api_key else None})"


class TokenSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What one jwt_config module (for one environment) tells the JWT service."""

    service_url: str
    forwarded: dict[str, Any]
    """`id`, `owner`, `metadata` of the module's config, as resolved."""
    claim_defaults: dict[str, Any]
    """Static claims fd2 adds when the module's own do not set them (project, environment,
    and the issuer/audience fd2 will check)."""
    jwe: dict[str, Any] | None
    allowed_api_keys: frozenset[bytes]
    """SHA-256 digests of the key names clients may log in with (names may be secrets)."""


def token_settings(config: Mapping[str, Any], *, project: str, environment: str) -> TokenSettings:
    """Read from a jwt_config module's resolved config; ConfigError when it cannot be used."""
    service = config.get("service_url")
    if not isinstance(service, str) or not service.startswith(("http://", "https://")):
        raise ConfigError("jwt_config.service_url must be an http(s) URL")
    defaults: dict[str, Any] = {"project": project, "environment": environment}
    for field, claim in (("issuer", "iss"), ("audience", "aud")):
        if config.get(field):
            defaults[claim] = config[field]
    return TokenSettings(
        service_url=service.rstrip("/") + "/token",
        forwarded={name: config[name] for name in _FORWARDED_CONFIG if config.get(name)},
        claim_defaults=defaults,
        jwe=_jwe(config.get("jwe_config")),
        allowed_api_keys=_allowed_keys(config.get("allowed_api_keys")),
    )


def _jwe(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not raw.get("enabled"):
        return None
    if raw.get("algorithm", "dir") != "dir" or raw.get("encryption", "A256GCM") != "A256GCM":
        raise ConfigError("jwe_config: only algorithm 'dir' with encryption 'A256GCM' is supported")
    key = raw.get("encryption_key")
    if not isinstance(key, Secret):
        raise ConfigError("jwe_config.encryption_key is missing")
    # Sent as standard base64, the one spelling the JWT service decodes to the same 32 bytes
    # fd2 decrypts with (it tries base64 first, so a hex key would be misread there). No
    # `compression`: fd2 accepts uncompressed tokens only.
    encoded = base64.b64encode(content_key(key.reveal())).decode()
    return {
        "enabled": True,
        "encryption_key": Secret(encoded, key.reference),
        "algorithm": "dir",
        "encryption": "A256GCM",
    }


def _allowed_keys(raw: Any) -> frozenset[bytes]:
    if raw is None:
        return frozenset()
    names = (
        [item.reveal() if isinstance(item, Secret) else item for item in raw]
        if isinstance(raw, list)
        else None
    )
    if names is None or not all(isinstance(name, str) and name for name in names):
        raise ConfigError("jwt_config.allowed_api_keys must be a list of API key names")
    return frozenset(_digest(name) for name in names)


def _digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def parse_login(body: Mapping[str, Any], settings: TokenSettings) -> Login:
    """The client's login; 400 naming the first field it may not send or got wrong."""
    for name in body:
        if name in LOGIN_FIELDS or name == "api_key":
            continue
        shown = _shown(name)
        raise BadRequest(
            f"The token request may not carry '{shown}': send only username and password.",
            param=shown,
            code="unknown_parameter",
        )
    username = _text(body, "username")
    password = _text(body, "password")
    api_key = body.get("api_key")
    if api_key is None:
        return Login(username=username, password=password)
    if not settings.allowed_api_keys:
        raise BadRequest(
            "The token request may not carry 'api_key' here: send only username and password.",
            param="api_key",
            code="unknown_parameter",
        )
    api_key = _text(body, "api_key")
    presented = _digest(api_key)
    if not any(hmac.compare_digest(presented, name) for name in settings.allowed_api_keys):
        raise KeyNotAllowed("This API key may not be used through this module.", param="api_key")
    return Login(username=username, password=password, api_key=api_key)


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{name}' must be a non-empty string.", param=name)
    if len(value) > _MAX_LOGIN_CHARS:
        raise BadRequest(f"'{name}' is longer than {_MAX_LOGIN_CHARS} characters.", param=name)
    return value


def _shown(name: str) -> str:
    # A client's field name, bounded and printable, safe to put in a message.
    return name if name.isprintable() and len(name) <= 64 else name[:32].encode().hex()


def service_request(login: Login, settings: TokenSettings, claims: Any) -> bytes:
    """The JSON body for the JWT service's `POST /token`. `claims`: the module's, resolved.

    An `api_key` login sends no `api_key_config` (which the service would prefer to the named
    key): its claims then come from that key on the service, and fd2 still checks them."""
    body: dict[str, Any] = {"username": login.username, "password": login.password}
    if login.api_key is not None:
        body["api_key"] = login.api_key
    else:
        config: dict[str, Any] = dict(settings.forwarded)
        config["claims"] = _service_claims(claims, settings.claim_defaults)
        if settings.jwe is not None:
            config["jwe_config"] = settings.jwe
        body["api_key_config"] = config
    return orjson.dumps(body, default=_reveal)


def _service_claims(claims: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if claims is None:
        claims = {}
    if not isinstance(claims, dict):
        raise ConfigError("The JWT module's config.claims is not an object.")
    static = claims.get("static") or {}
    dynamic = claims.get("dynamic") or {}
    for part, value in (("static", static), ("dynamic", dynamic)):
        if not isinstance(value, dict):
            raise ConfigError(f"The JWT module's config.claims.{part} is not an object.")
    names = [(f"static.{name}", name) for name in static]
    names += [(f"dynamic.{name}", name) for name in dynamic]
    for name, spec in dynamic.items():
        formulas = spec.get("formulas") if isinstance(spec, dict) else None
        if isinstance(formulas, dict):  # a formula claim adds one claim per formula
            names += [(f"dynamic.{name}.formulas.{claim}", claim) for claim in formulas]
    for path, name in names:
        if name in RESERVED_CLAIMS:
            raise ConfigError(
                f"The JWT module's claim config.claims.{path} is set by the JWT service itself."
            )
    service_claims: dict[str, Any] = {"static": {**defaults, **static}}
    if dynamic:
        service_claims["dynamic"] = dynamic
    return service_claims


def _reveal(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    raise TypeError(type(value).__name__)


def check_service_answer(status: int, answer: bytes) -> None:
    """Passes the JWT service's own answers (a token, or its `{"error": ...}`); anything else is
    a 502, never relayed."""
    try:
        value = orjson.loads(answer)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"The JWT service answered {status} with something not JSON.") from None
    if not isinstance(value, dict):
        raise UpstreamError(f"The JWT service answered {status} with something not an object.")
    if status == 200 and isinstance(value.get("access_token"), str):
        return
    if 400 <= status < 600 and "error" in value:
        return
    raise UpstreamError(f"The JWT service answered {status} with neither a token nor an error.")
