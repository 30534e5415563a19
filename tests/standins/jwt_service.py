"""A JWT service stand-in: issues tokens the way the platform's JWT service does, over real HTTP.

Run it with ``python tests/standins/jwt_service.py --port N --config FILE``; FILE is JSON:
``{"secret": "...", "users": {"alice": {"password": "...", "name": ..., "groups": [...]}},
"api_keys": {"<key>": {<static claims>}}, "expiration_minutes": 30, "jwe_key_hex": null,
"extra_claims": {"iss": ..., "aud": ...}}``.

``POST /token`` with a JSON (or form) body ``username``, ``password`` and optional ``api_key``
answers 200 ``{"access_token", "refresh_token", "token_type": "bearer", "expires_in"}``: HS256
tokens whose claims are flat at the top level (``sub``, ``iat``, ``nbf``, ``exp``, ``jti``,
``type``, ``fresh``, the user's ``name``/``email``/``groups``/``roles`` and the API key's static
claims). With ``jwe_key_hex`` the access token is wrapped as JWE (``dir`` / ``A256GCM``).
Wrong credentials get 401 ``{"detail": "Invalid credentials"}``; a malformed body 422.
``GET /health`` answers 200.
"""

from __future__ import annotations

import argparse
import base64
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from serving import read_body, send_json  # beside this script, first on sys.path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def wrap_jwe(key: bytes, token: str) -> str:
    """JWE compact form, `alg: dir`, `enc: A256GCM`: the protected header is the AAD."""
    protected = _b64(b'{"alg":"dir","enc":"A256GCM"}')
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, token.encode(), protected.encode())
    return ".".join((protected, "", _b64(iv), _b64(sealed[:-16]), _b64(sealed[-16:])))


class JwtService:
    def __init__(self, config: dict[str, Any]) -> None:
        self.secret: str = config["secret"]
        self.users: dict[str, dict[str, Any]] = config.get("users", {})
        self.api_keys: dict[str, dict[str, Any]] = config.get("api_keys", {})
        self.minutes: float = config.get("expiration_minutes", 30)
        self.extra_claims: dict[str, Any] = config.get("extra_claims", {})
        jwe = config.get("jwe_key_hex")
        self.jwe_key = bytes.fromhex(jwe) if jwe else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status, answer = self._answer(scope, await read_body(receive))
        await send_json(send, status, answer)

    def _answer(self, scope: Scope, body: bytes) -> tuple[int, Any]:
        if scope["path"] == "/health":
            return 200, {"status": "ok"}
        if scope["path"] != "/token" or scope["method"] != "POST":
            return 404, {"detail": "Not Found"}
        form = _form(scope, body)
        if form is None or not isinstance(form.get("username"), str):
            return 422, {"detail": "username and password are required"}
        user = self.users.get(form["username"])
        if user is None or user.get("password") != form.get("password"):
            return 401, {"detail": "Invalid credentials"}
        static: dict[str, Any] = {}
        if form.get("api_key") is not None:
            static = self.api_keys.get(form["api_key"], {})
            if not static:
                return 401, {"detail": "Invalid API key"}
        profile = {k: user[k] for k in ("name", "email", "groups", "roles") if k in user}
        access = self._token(form["username"], "access", {**profile, **static})
        if self.jwe_key is not None:
            access = wrap_jwe(self.jwe_key, access)
        return 200, {
            "access_token": access,
            "refresh_token": self._token(form["username"], "refresh", {}),
            "token_type": "bearer",
            "expires_in": int(self.minutes * 60),
        }

    def _token(self, subject: str, kind: str, claims: dict[str, Any]) -> str:
        now = int(time.time())
        payload = {
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(self.minutes * 60),
            "jti": str(uuid.uuid4()),
            "type": kind,
            "fresh": kind == "access",
            **self.extra_claims,
            **claims,
        }
        return jwt.encode(payload, self.secret, algorithm="HS256")


def _form(scope: Scope, body: bytes) -> dict[str, Any] | None:
    content_type = dict(scope["headers"]).get(b"content-type", b"")
    try:
        if content_type.startswith(b"application/x-www-form-urlencoded"):
            return dict(parse_qsl(body.decode()))
        value = orjson.loads(body)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


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
