"""A Vault stand-in: the part of Vault's HTTP API fd2 uses, over a real socket, for hvac to talk to.

Run it with ``python tests/standins/vault.py --port N`` (HTTPS with ``--tls-cert`` and
``--tls-key``; client certificates required with ``--tls-client-ca``). Vault's API as fd2 uses it:

- ``GET /v1/<mount>/data/<path>`` (KV v2) → ``{"data": {"data": {...}, "metadata": {...}}}``;
  ``X-Vault-Token`` required (403 ``{"errors": ["permission denied"]}`` when missing, unknown,
  expired or revoked); 404 ``{"errors": []}`` for a missing secret; ``X-Vault-Namespace`` selects
  the namespace a secret is stored in
- ``POST /v1/auth/approle/login`` ``{"role_id", "secret_id"}`` → ``{"auth": {"client_token",
  "lease_duration", "renewable", ...}}``; 400 ``{"errors": ["invalid role or secret ID"]}``
- ``GET /v1/auth/token/lookup-self`` → ``{"data": {"ttl", "renewable", ...}}``, 403 as above
- ``POST /v1/auth/token/renew-self`` → ``{"auth": {"client_token", "lease_duration", ...}}``
  (never past the token's maximum TTL), 403 as above

Controls for tests, under ``/_vault/`` (JSON bodies): ``secret`` {namespace?, mount, path, data}
writes a new version; ``token`` {token, ttl?, renewable?} registers a static token; ``approle``
{role_id, secret_id, ttl, max_ttl?} registers an AppRole; ``revoke`` revokes every token issued
so far; ``fail`` {status, errors?} makes every API call answer that status (``{"status": 0}``
stops failing);
``GET stats`` counts calls by kind; ``reset`` zeroes the counters. One worker, state in memory.
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from serving import read_body, send_json  # beside this script, first on sys.path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class _Token:
    expires_at: float | None  # monotonic; None: never
    ttl: int
    renewable: bool
    max_expires_at: float | None = None  # renewals never go past this
    revoked: bool = False


@dataclass
class _Secret:
    data: dict[str, Any]
    version: int
    created: str


@dataclass
class VaultState:
    secrets: dict[tuple[str, str, str], _Secret] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)
    approles: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    """role_id → (secret_id, ttl, max_ttl)."""
    calls: Counter[str] = field(default_factory=Counter)
    fail_status: int = 0
    fail_errors: list[str] = field(default_factory=list)


class VaultStandin:
    def __init__(self) -> None:
        self.state = VaultState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status, answer = self._answer(scope, await read_body(receive))
        await send_json(send, status, answer)

    def _answer(self, scope: Scope, body: bytes) -> tuple[int, Any]:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/_vault/"):
            return self._control(path.removeprefix("/_vault/"), orjson.loads(body or b"{}"))
        headers = {name.lower(): value.decode("latin-1") for name, value in scope["headers"]}
        state = self.state
        if state.fail_status:
            state.calls["failed"] += 1
            return state.fail_status, {"errors": state.fail_errors}
        if path == "/v1/auth/approle/login" and method in ("POST", "PUT"):
            return self._login(orjson.loads(body or b"{}"))
        token = headers.get(b"x-vault-token", "")
        if path == "/v1/auth/token/lookup-self" and method == "GET":
            state.calls["lookup"] += 1
            record = self._valid(token)
            if record is None:
                return 403, {"errors": ["permission denied"]}
            remaining = 0 if record.expires_at is None else record.expires_at - time.monotonic()
            return 200, _envelope(
                data={
                    "ttl": max(int(remaining), 0),
                    "creation_ttl": record.ttl,
                    "renewable": record.renewable,
                    "policies": ["default", "fd2"],
                    "type": "service",
                }
            )
        if path == "/v1/auth/token/renew-self" and method in ("POST", "PUT"):
            return self._renew(token)
        if path.startswith("/v1/") and "/data/" in path and method == "GET":
            state.calls["read"] += 1
            if self._valid(token) is None:
                state.calls["read_refused"] += 1
                return 403, {"errors": ["permission denied"]}
            mount, _, secret_path = path.removeprefix("/v1/").partition("/data/")
            namespace = headers.get(b"x-vault-namespace", "").strip("/")
            stored = state.secrets.get((namespace, mount, secret_path))
            if stored is None:
                return 404, {"errors": []}
            return 200, _envelope(
                data={
                    "data": stored.data,
                    "metadata": {
                        "created_time": stored.created,
                        "custom_metadata": None,
                        "deletion_time": "",
                        "destroyed": False,
                        "version": stored.version,
                    },
                }
            )
        return 404, {"errors": []}

    def _login(self, payload: dict[str, Any]) -> tuple[int, Any]:
        state = self.state
        state.calls["login"] += 1
        role = state.approles.get(str(payload.get("role_id", "")))
        if role is None or role[0] != payload.get("secret_id"):
            state.calls["login_refused"] += 1
            return 400, {"errors": ["invalid role or secret ID"]}
        ttl, max_ttl = role[1], role[2]
        token = "hvs." + secrets.token_urlsafe(18)
        now = time.monotonic()
        state.tokens[token] = _Token(
            now + ttl if ttl else None, ttl, True, now + max_ttl if max_ttl else None
        )
        return 200, _envelope(
            auth={
                "client_token": token,
                "accessor": secrets.token_hex(8),
                "policies": ["default", "fd2"],
                "token_policies": ["default", "fd2"],
                "metadata": {"role_name": "fd2"},
                "lease_duration": ttl,
                "renewable": True,
                "entity_id": "",
                "token_type": "service",
                "orphan": True,
            }
        )

    def _renew(self, token: str) -> tuple[int, Any]:
        self.state.calls["renew"] += 1
        record = self._valid(token)
        if record is None:
            return 403, {"errors": ["permission denied"]}
        if not record.renewable or record.expires_at is None:
            return 400, {"errors": ["lease is not renewable"]}
        now = time.monotonic()
        record.expires_at = now + record.ttl
        if record.max_expires_at is not None:
            record.expires_at = min(record.expires_at, record.max_expires_at)
        lease = max(int(record.expires_at - now), 0)
        return 200, _envelope(
            auth={"client_token": token, "lease_duration": lease, "renewable": True}
        )

    def _valid(self, token: str) -> _Token | None:
        record = self.state.tokens.get(token)
        if record is None or record.revoked:
            return None
        if record.expires_at is not None and time.monotonic() >= record.expires_at:
            return None
        return record

    def _control(self, action: str, payload: dict[str, Any]) -> tuple[int, Any]:
        state = self.state
        if action == "stats":
            return 200, dict(state.calls)
        if action == "reset":
            state.calls.clear()
            return 200, {}
        if action == "secret":
            key = (str(payload.get("namespace", "")).strip("/"), payload["mount"], payload["path"])
            old = state.secrets.get(key)
            state.secrets[key] = _Secret(
                dict(payload["data"]), (old.version if old else 0) + 1, _now()
            )
            return 200, {"version": state.secrets[key].version}
        if action == "token":
            ttl = int(payload.get("ttl", 0))
            expires = time.monotonic() + ttl if ttl else None
            state.tokens[payload["token"]] = _Token(expires, ttl, bool(payload.get("renewable")))
            return 200, {}
        if action == "approle":
            state.approles[payload["role_id"]] = (
                payload["secret_id"],
                int(payload.get("ttl", 0)),
                int(payload.get("max_ttl", 0)),
            )
            return 200, {}
        if action == "revoke":
            for record in state.tokens.values():
                record.revoked = True
            return 200, {"revoked": len(state.tokens)}
        if action == "fail":
            state.fail_status = int(payload.get("status", 0))
            state.fail_errors = list(payload.get("errors", ["Vault is sealed"]))
            return 200, {}
        return 404, {"errors": [f"unknown control {action}"]}


def _envelope(*, data: Any = None, auth: Any = None) -> dict[str, Any]:
    return {
        "request_id": secrets.token_hex(8),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": auth,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def create_app() -> VaultStandin:
    return VaultStandin()


def main() -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="Vault stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--tls-client-ca", type=Path, help="require client certificates from it")
    args = parser.parse_args()
    tls: dict[str, Any] = {}
    if args.tls_cert:
        tls = {"ssl_cert": args.tls_cert, "ssl_key": args.tls_key}
    if args.tls_client_ca:
        tls |= {"ssl_ca": args.tls_client_ca, "ssl_client_verify": True}
    serve(f"{__file__}:create_app", host=args.host, port=args.port, factory=True, tls=tls)


if __name__ == "__main__":
    main()
