"""A JWT service stand-in: `POST /token` as the platform's JWT service (dsp_ai_jwt) answers it.

Run it with ``python tests/standins/jwt_service.py --port N --config FILE``; FILE is JSON:
``{"secret": <its JWT_SECRET_KEY>, "users": {"alice": {"password": "...", "name", "email",
"groups", "roles"}}, "api_keys": {"<key name>": <key config>}, "base_api_key": <key config>,
"environ": {"NAME": "..."}}``. A key config is what the service keeps in
``config/api_keys/<name>.yaml``: ``{"id", "owner", "claims": {"static": {...}, "dynamic": {...}},
"jwe_config": {...}, "metadata": {...}}``.

What it mirrors (checked against the real service): the request is JSON (``username``,
``password``, optional ``api_key``, ``api_key_config``, ``secret``); a non-JSON content type gets
400 ``{"error": "Missing JSON in request"}``, a body that is not JSON 400 and one that is not an
object 500 (Flask's HTML pages); a missing or empty username or password 400 ``{"error": "Missing
username or password"}``; wrong credentials 401 ``{"error": "Invalid username or password"}``. The
claims are the user's (``sub``, ``name``, ``email``, ``groups``, ``roles``) overridden by the key's
static and dynamic claims; the key is the inline ``api_key_config`` when given, else the named
``api_key``, else the base key; ``exp_hours`` sets the access token's lifetime (default 1 h;
refresh tokens 30 days) and is not a claim. Claims are applied after the service's own, so they can
override ``type``, ``exp`` or ``sub`` as in the real one. A ``secret`` signs both tokens with that
secret instead (answer with a ``note``, never JWE). When the key's ``jwe_config`` is enabled, both
tokens are JWE (``dir``, AES-GCM, ``zip: DEF`` when ``compression`` is ``DEF``, ``kid`` = the
``key`` claim) sealing ``{"jwt": <token>}``. Success: 200 ``{"access_token", "refresh_token"}``.

Dynamic claims are never run: each one asked for is recorded (and gives no claim, as a failed
function does in the real service). ``GET /_standin/received`` lists every token request with the
fields it carried (never a password); ``GET /health`` answers 200 (the real service has no such
route).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from serving import read_body  # beside this script, first on sys.path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

ACCESS_SECONDS = 3600
REFRESH_SECONDS = 30 * 24 * 3600
GCM_KEY_SIZES = {"A128GCM": 16, "A192GCM": 24, "A256GCM": 32}
CONTENT_ENCRYPTIONS = (*GCM_KEY_SIZES, "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512")
NOTE_SECRET = (
    "Tokens generated with custom secret - will not be usable with standard application routes "
    "unless the same secret is provided for verification"
)
NOTE_JWE = "Tokens are JWE-encrypted. Use /decrypt-jwe endpoint to extract JWT."
_PAGES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


class Answer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def seal(token: str, key: bytes, encryption: str, compression: Any, kid: Any) -> str:
    """JWE compact form as the service's jwcrypto writes it: `dir`, the protected header (sorted,
    compact JSON) as AAD, the plaintext `{"jwt": token}`, deflated when `zip` is `DEF`."""
    header: dict[str, Any] = {"alg": "dir", "enc": encryption}
    if kid:
        header["kid"] = kid
    plain = _compact({"jwt": token})
    if compression:
        header["zip"] = compression
        packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        plain = packer.compress(plain) + packer.flush()
    protected = _b64(_compact(header))
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, plain, protected.encode())
    return ".".join((protected, "", _b64(iv), _b64(sealed[:-16]), _b64(sealed[-16:])))


def _jwe_key(raw: str | None, encryption: str) -> bytes:
    # The service tries base64 (lenient, as Python's b64decode is), then hex, then the raw text.
    size = GCM_KEY_SIZES[encryption]
    if raw is None:
        return os.urandom(size)  # the service generates a key no one else knows
    try:
        key = base64.b64decode(raw)
    except (binascii.Error, ValueError):
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            key = raw.encode()
    if len(key) != size:
        raise ValueError(
            f"Invalid key size: expected {size} bytes for {encryption}, got {len(key)} bytes"
        )
    return key


class JwtService:
    def __init__(self, config: dict[str, Any]) -> None:
        self.secret: str = config["secret"]
        self.users: dict[str, dict[str, Any]] = config.get("users", {})
        self.api_keys: dict[str, dict[str, Any]] = config.get("api_keys", {})
        self.base_key: dict[str, Any] = config.get("base_api_key", {})
        self.environ: dict[str, str] = config.get("environ", {})
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        try:
            answer = self._route(scope, body)
        except Answer as given:
            answer = given
        if isinstance(answer.body, str):
            reason = _PAGES[answer.status]
            page = (
                f"<!doctype html>\n<html lang=en>\n<title>{answer.status} {reason}</title>\n"
                f"<h1>{reason}</h1>\n"
            )
            await _send(send, answer.status, page.encode(), b"text/html; charset=utf-8")
        else:
            await _send(send, answer.status, _compact(answer.body) + b"\n", b"application/json")

    def _route(self, scope: Scope, body: bytes) -> Answer:
        path, method = scope["path"], scope["method"]
        if path == "/health":
            return Answer(200, {"status": "ok"})
        if path == "/_standin/received":
            return Answer(200, self.received)
        if path != "/token":
            return Answer(404, "page")
        if method != "POST":
            return Answer(405, "page")
        return self._token(_json_body(scope, body))

    def _token(self, request: dict[str, Any]) -> Answer:
        username, password = request.get("username"), request.get("password")
        api_key, inline = request.get("api_key"), request.get("api_key_config")
        custom_secret = request.get("secret")
        record: dict[str, Any] = {"fields": sorted(request), "username": username}
        record.update({k: request[k] for k in ("api_key", "api_key_config") if k in request})
        record.update(secret=bool(custom_secret), dynamic=[])
        self.received.append(record)
        if not username or not password:
            return Answer(400, {"error": "Missing username or password"})
        user = self.users.get(username) if isinstance(username, str) else None
        if user is None or not isinstance(password, str) or user.get("password") != password:
            return Answer(401, {"error": "Invalid username or password"})
        named = self.api_keys.get(api_key) if isinstance(api_key, str) else None
        key = inline if inline else named
        claims: dict[str, Any] = {
            "sub": username,
            "name": user.get("name", username),
            "email": user.get("email", ""),
            "groups": user.get("groups", []),
            "roles": user.get("roles", []),
            **self._key_claims(key if key is not None else self.base_key, record),
        }
        lifetime = ACCESS_SECONDS
        if "exp_hours" in claims:
            hours = claims.pop("exp_hours")
            if isinstance(hours, bool) or not isinstance(hours, int | float):
                return Answer(500, "page")  # timedelta(hours=...) raises there
            lifetime = int(hours * 3600)
        if custom_secret:
            return Answer(200, self._custom(username, claims, lifetime, custom_secret))
        access = self._flask_token(username, "access", claims, lifetime)
        refresh = self._flask_token(username, "refresh", claims, REFRESH_SECONDS)
        jwe = self._jwe_config(api_key, inline)
        if not jwe:
            return Answer(200, {"access_token": access, "refresh_token": refresh})
        return Answer(200, self._sealed(jwe, access, refresh, claims))

    def _key_claims(self, key: Any, record: dict[str, Any]) -> dict[str, Any]:
        try:  # the service turns any error here into "no claims"
            static = key.get("claims", {}).get("static", {})
            dynamic = key.get("claims", {}).get("dynamic", {}) or {}
            for name, spec in dynamic.items():
                # Recorded, never run: the real service imports and calls what it is given.
                record["dynamic"].append({"claim": name, **spec})
            return {**static}
        except AttributeError:
            return {}

    def _flask_token(self, subject: str, kind: str, claims: dict[str, Any], seconds: int) -> str:
        # flask-jwt-extended's order; the key's claims are applied last and override everything.
        now = int(time.time())
        payload = {
            "fresh": kind == "access",
            "iat": now,
            "jti": str(uuid.uuid4()),
            "type": kind,
            "sub": subject,
            "nbf": now,
            "exp": now + seconds,
        }
        payload.update(claims)
        return jwt.encode(payload, self.secret, algorithm="HS256")

    def _custom(
        self, subject: str, claims: dict[str, Any], lifetime: int, secret: str
    ) -> dict[str, Any]:
        now = int(time.time())
        tokens = {}
        for kind, seconds in (("access", lifetime), ("refresh", REFRESH_SECONDS)):
            payload: dict[str, Any] = {"iat": now, "nbf": now, "jti": str(uuid.uuid4())}
            payload.update(exp=now + seconds, sub=subject, type=kind)
            if kind == "access":
                payload["fresh"] = True
            tokens[f"{kind}_token"] = jwt.encode({**payload, **claims}, secret, algorithm="HS256")
        return {**tokens, "note": NOTE_SECRET}

    def _jwe_config(self, api_key: Any, inline: Any) -> dict[str, Any] | None:
        try:
            named = self.api_keys.get(api_key) if isinstance(api_key, str) else None
            jwe = (inline or named or {}).get("jwe_config", {})
            return jwe if jwe.get("enabled", False) else None
        except AttributeError:
            return None

    def _sealed(
        self, jwe: dict[str, Any], access: str, refresh: str, claims: dict[str, Any]
    ) -> dict[str, Any]:
        raw = jwe.get("encryption_key")
        if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}"):
            raw = self.environ.get(raw[2:-1]) or os.environ.get(raw[2:-1])
            if not raw:
                raise Answer(500, {"error": "JWE encryption key not configured"})
        encryption = jwe.get("encryption", "A256GCM")
        compression = jwe.get("compression")
        try:
            if encryption not in CONTENT_ENCRYPTIONS:
                raise ValueError(f"Unsupported content encryption: {encryption}")
            if compression not in (None, "DEF"):
                raise ValueError(f"Unsupported compression: {compression}")
            if encryption not in GCM_KEY_SIZES:
                raise ValueError(f"the stand-in does not implement {encryption}")
            key = _jwe_key(raw, encryption)
        except ValueError as exc:
            raise Answer(500, {"error": f"JWE encryption failed: {exc}"}) from None
        kid = claims.get("key")
        return {
            "access_token": seal(access, key, encryption, compression, kid),
            "refresh_token": seal(refresh, key, encryption, compression, kid),
            "token_type": "JWE",
            "encryption": encryption,
            "note": NOTE_JWE,
        }


def _json_body(scope: Scope, body: bytes) -> dict[str, Any]:
    content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
    if not (
        content_type == b"application/json"
        or (content_type.startswith(b"application/") and content_type.endswith(b"+json"))
    ):
        raise Answer(400, {"error": "Missing JSON in request"})
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Answer(400, "page") from None
    if not isinstance(value, dict):
        raise Answer(500, "page")  # the service calls `.get` on it
    return value


async def _send(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app() -> JwtService:
    return JwtService(orjson.loads(Path(os.environ["JWT_STANDIN_CONFIG"]).read_bytes()))


def main() -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="JWT service stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()
    os.environ["JWT_STANDIN_CONFIG"] = str(args.config.resolve())
    serve(f"{__file__}:create_app", host=args.host, port=args.port, factory=True)


if __name__ == "__main__":
    main()
