"""A Control Tower stand-in: the real service's manifest API over a directory of manifest files.

Run it with ``python tests/standins/control_tower.py --port N --manifests DIR [--secret S]
[--superuser-secret S] [--etag]``.

It answers as the real Control Tower does (recorded against it: tests/standins/ct_recorded):
manifests are stored and read through a table of its models (ct_models.py), so undeclared fields
are dropped, declared ones get their defaults, `status: null` stays null, and a module config that
fails its type's model is taken by whichever model the union picks. `created_at`/`updated_at`
missing from a stored manifest are the current time on every answer; a save sets `updated_at`.

- ``GET /manifests`` → ``{"manifests": [{"project_id", "project_name", "version",
  "environment", "owner", "module_count", "created_at", "updated_at"}...], "count": N}``
- ``GET /manifests/{id}`` → the manifest in ``DIR/{id}.json`` through the models; 404
  ``{"detail": "Manifest not found: X"}`` when absent or invalid; 400 for ids outside
  ``^[a-zA-Z0-9_-]+$``; ``GET /manifests/{id}/modules[/{name}]``
- ``POST /manifests``, ``PUT /manifests/{id}`` (body ``{"manifest": {...}}``), ``DELETE
  /manifests/{id}``, ``POST /manifests/validate``: with the superuser secret in
  ``X-DSPAI-Client-Secret`` (201/200; 409, 400, 404; 401 after a one-second pause; FastAPI's
  422 list)

Test controls (never part of the real API):
- the superuser secret is ``--superuser-secret``, else ``--secret``
- with ``--secret``, reads without the matching ``X-DSPAI-Client-Secret`` get 401 (the real service
  checks no secret on reads)
- with ETags on (``--etag`` or the behaviour switch), manifest answers carry an ETag of the stored
  file and ``If-None-Match`` with the current one gets 304
- ``GET /_ct/stats`` → ``{"calls": {project_id: n}, "total": n, "not_modified": n}`` (every
  ``/manifests/{id}...`` request, answered or refused); ``POST /_ct/reset`` zeroes them
- ``POST /_ct/behaviour`` with ``{"mode": "normal" | "error" | "garbage" | "stored",
  "delay_s": s, "etag": bool}``: answer manifest reads normally, with 500, with a 200 that is not
  JSON, or with the stored file as it is (not through the models: a manifest no real Control Tower
  would serve, for testing fd2's own checks); wait ``delay_s`` before answering; send ETags or
  not. Omitted keys keep their value.

Files are read on every request, so a test changes what it serves by rewriting them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from ct_api import Answer, ManifestApi
from ct_moments import iso
from ct_store import Store
from serving import read_body, send_json  # beside this script, first on sys.path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_MODES = ("normal", "error", "garbage", "stored")


class ControlTower:
    def __init__(
        self,
        directory: Path,
        secret: str | None,
        etag: bool = False,
        superuser_secret: str | None = None,
    ) -> None:
        self.store = Store(directory)
        self.api = ManifestApi(self.store, superuser_secret or secret)
        self.secret = secret.encode() if secret else None
        self.calls: Counter[str] = Counter()
        self.not_modified = 0
        self.mode = "normal"
        self.delay_s = 0.0
        self.etag = etag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # served without the lifespan protocol: nothing to set up
            return
        answer = await self._answer(scope, await read_body(receive))
        await send_json(send, answer.status, answer.payload, answer.headers)

    async def _answer(self, scope: Scope, body: bytes) -> Answer:
        path: str = scope["path"]
        if path.startswith("/_ct/"):
            return self._control(path, body)
        parts = [part for part in path.split("/") if part]
        if not parts or parts[0] != "manifests":
            return Answer(404, {"detail": "Not Found"})
        if len(parts) >= 2:
            self.calls[parts[1]] += 1  # every manifest request, answered or refused
        headers = dict(scope["headers"])
        method: str = scope["method"]
        if method != "GET":
            return await self.api.handle(method, parts, headers, body)
        if self.secret is not None and headers.get(b"x-dspai-client-secret") != self.secret:
            return Answer(401, {"detail": "Invalid or missing client secret"})
        if len(parts) == 1:
            return await self.api.handle(method, parts, headers, body)
        return await self._read(parts, headers)

    async def _read(self, parts: list[str], headers: dict[bytes, bytes]) -> Answer:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.mode == "error":
            return Answer(500, {"detail": "Internal Server Error"})
        if self.mode == "garbage":
            return Answer(200, b"<html>upstream proxy error</html>")
        answer = await self.api.handle("GET", parts, headers, b"")
        stored = self.store.stored(parts[1]) if answer.status in (200, 404) else None
        if stored is None or len(parts) != 2:
            return answer
        if self.mode == "stored":
            answer = Answer(200, _as_stored(stored))
        if answer.status != 200 or not self.etag:
            return answer
        tag = b'"%s"' % hashlib.sha256(stored).hexdigest()[:20].encode()
        if headers.get(b"if-none-match") == tag:
            self.not_modified += 1
            return Answer(304, b"", [(b"etag", tag)])
        answer.headers.append((b"etag", tag))
        return answer

    def _control(self, path: str, body: bytes) -> Answer:
        if path == "/_ct/stats":
            stats = {"calls": dict(self.calls), "total": sum(self.calls.values())}
            return Answer(200, {**stats, "not_modified": self.not_modified})
        if path == "/_ct/reset":
            self.calls.clear()
            self.not_modified = 0
            return Answer(200, {})
        if path == "/_ct/behaviour":
            change = orjson.loads(body or b"{}")
            mode = change.get("mode", self.mode)
            if mode not in _MODES:
                return Answer(400, {"detail": f"mode must be one of {_MODES}"})
            self.mode = mode
            self.delay_s = float(change.get("delay_s", self.delay_s))
            self.etag = bool(change.get("etag", self.etag))
            return Answer(200, {"mode": self.mode, "delay_s": self.delay_s, "etag": self.etag})
        return Answer(404, {"detail": "Not Found"})


def _as_stored(stored: bytes) -> Any:
    """The file as written, with only the timestamps filled in when it lacks them."""
    manifest = json.loads(stored)
    if isinstance(manifest, dict):
        now = iso(datetime.now())
        manifest.setdefault("created_at", now)
        manifest.setdefault("updated_at", now)
    return manifest


def create_app() -> ControlTower:
    """Granian's factory target: the worker reads its settings back from the environment."""
    return ControlTower(
        Path(os.environ["CT_STANDIN_MANIFESTS"]),
        os.environ.get("CT_STANDIN_SECRET"),
        etag=os.environ.get("CT_STANDIN_ETAG") == "1",
        superuser_secret=os.environ.get("CT_STANDIN_SUPERUSER_SECRET"),
    )


def main() -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="Control Tower stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--manifests", type=Path, required=True)
    parser.add_argument("--secret", help="required on reads (a test control)")
    parser.add_argument("--superuser-secret", help="for writes; defaults to --secret")
    parser.add_argument("--etag", action="store_true", help="send ETags, answer 304")
    args = parser.parse_args()
    os.environ["CT_STANDIN_MANIFESTS"] = str(args.manifests.resolve())
    if args.secret:
        os.environ["CT_STANDIN_SECRET"] = args.secret
    if args.superuser_secret:
        os.environ["CT_STANDIN_SUPERUSER_SECRET"] = args.superuser_secret
    if args.etag:
        os.environ["CT_STANDIN_ETAG"] = "1"
    serve(f"{__file__}:create_app", host=args.host, port=args.port, factory=True)


if __name__ == "__main__":
    main()
