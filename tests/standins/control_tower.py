"""A Control Tower stand-in: serves a directory of project manifests over its real HTTP API.

Run it with ``python tests/standins/control_tower.py --port N --manifests DIR [--secret S]
[--etag]``.

- ``GET /manifests`` → ``{"manifests": [{"project_id", "project_name"}...], "count": N}``
- ``GET /manifests/{project_id}`` → the manifest file ``DIR/{project_id}.json``; 404
  ``{"detail": "Manifest not found: X"}``; 400 for ids outside ``^[a-zA-Z0-9_-]+$``
- ``GET /manifests/{project_id}/modules/{name}`` → one module entry, or 404
- with ``--secret``, requests without the matching ``X-DSPAI-Client-Secret`` get 401
- like the real service, ``created_at``/``updated_at`` missing from a stored manifest are filled
  with the current time on every answer (so they must never be taken as change markers)
- with ETags on (``--etag`` or the behaviour switch), answers carry an ETag of the stored file and
  ``If-None-Match`` with the current one gets 304

Files are read on every request, so a test changes what it serves by rewriting them.

Test controls (never part of the real API):
- ``GET /_ct/stats`` → ``{"calls": {project_id: n}, "total": n, "not_modified": n}``
- ``POST /_ct/reset`` zeroes them
- ``POST /_ct/behaviour`` with ``{"mode": "normal" | "error" | "garbage", "delay_s": s,
  "etag": bool}``: answer manifest requests normally, with 500, or with a 200 that is not JSON;
  wait ``delay_s`` before answering; send ETags or not. Omitted keys keep their value.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from serving import read_body, send_json  # beside this script, first on sys.path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PROJECT_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_MODES = ("normal", "error", "garbage")


class ControlTower:
    def __init__(self, directory: Path, secret: str | None, etag: bool = False) -> None:
        self.directory = directory
        self.secret = secret.encode() if secret else None
        self.calls: Counter[str] = Counter()
        self.not_modified = 0
        self.mode = "normal"
        self.delay_s = 0.0
        self.etag = etag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # served without the lifespan protocol: nothing to set up
            return
        status, payload, headers = await self._answer(scope, await read_body(receive))
        await send_json(send, status, payload, headers)

    async def _answer(
        self, scope: Scope, body: bytes
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        path: str = scope["path"]
        if path.startswith("/_ct/"):
            return (*self._control(path, body), [])
        parts = [part for part in path.split("/") if part]
        if len(parts) >= 2 and parts[0] == "manifests":
            self.calls[parts[1]] += 1  # every manifest request, answered or refused
        if self.secret is not None:
            given = dict(scope["headers"]).get(b"x-dspai-client-secret")
            if given != self.secret:
                return 401, {"detail": "Invalid or missing client secret"}, []
        if parts == ["manifests"]:
            listing = [
                {"project_id": m["project_id"], "project_name": m.get("project_name", "")}
                for m in (self._load(p.stem)[0] for p in sorted(self.directory.glob("*.json")))
                if m is not None
            ]
            return 200, {"manifests": listing, "count": len(listing)}, []
        if len(parts) < 2 or parts[0] != "manifests":
            return 404, {"detail": "Not Found"}, []
        project = parts[1]
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.mode == "error":
            return 500, {"detail": "Internal Server Error"}, []
        if self.mode == "garbage":
            return 200, b"<html>upstream proxy error</html>", []
        if not _PROJECT_ID.match(project):
            return 400, {"detail": "Invalid project_id"}, []
        manifest, tag = self._load(project)
        if manifest is None:
            return 404, {"detail": f"Manifest not found: {project}"}, []
        headers = [(b"etag", tag)] if self.etag else []
        if len(parts) == 2:
            if self.etag and dict(scope["headers"]).get(b"if-none-match") == tag:
                self.not_modified += 1
                return 304, b"", headers
            return 200, manifest, headers
        if len(parts) == 4 and parts[2] == "modules":
            for module in manifest.get("modules", []):
                if module.get("name") == parts[3]:
                    return 200, module, []
            return 404, {"detail": f"Module not found: {parts[3]}"}, []
        return 404, {"detail": "Not Found"}, []

    def _control(self, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/_ct/stats":
            stats = {"calls": dict(self.calls), "total": sum(self.calls.values())}
            return 200, {**stats, "not_modified": self.not_modified}
        if path == "/_ct/reset":
            self.calls.clear()
            self.not_modified = 0
            return 200, {}
        if path == "/_ct/behaviour":
            change = orjson.loads(body or b"{}")
            mode = change.get("mode", self.mode)
            if mode not in _MODES:
                return 400, {"detail": f"mode must be one of {_MODES}"}
            self.mode = mode
            self.delay_s = float(change.get("delay_s", self.delay_s))
            self.etag = bool(change.get("etag", self.etag))
            return 200, {"mode": self.mode, "delay_s": self.delay_s, "etag": self.etag}
        return 404, {"detail": "Not Found"}

    def _load(self, project: str) -> tuple[dict[str, Any] | None, bytes]:
        try:
            stored = (self.directory / f"{project}.json").read_bytes()
        except FileNotFoundError:
            return None, b""
        manifest: dict[str, Any] = orjson.loads(stored)
        now = datetime.now(UTC).isoformat()
        manifest.setdefault("created_at", now)
        manifest.setdefault("updated_at", now)
        return manifest, b'"%s"' % hashlib.sha256(stored).hexdigest()[:20].encode()


def create_app() -> ControlTower:
    """Granian's factory target: the worker reads its settings back from the environment."""
    return ControlTower(
        Path(os.environ["CT_STANDIN_MANIFESTS"]),
        os.environ.get("CT_STANDIN_SECRET"),
        etag=os.environ.get("CT_STANDIN_ETAG") == "1",
    )


def main() -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="Control Tower stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--manifests", type=Path, required=True)
    parser.add_argument("--secret")
    parser.add_argument("--etag", action="store_true", help="send ETags, answer 304")
    args = parser.parse_args()
    os.environ["CT_STANDIN_MANIFESTS"] = str(args.manifests.resolve())
    if args.secret:
        os.environ["CT_STANDIN_SECRET"] = args.secret
    if args.etag:
        os.environ["CT_STANDIN_ETAG"] = "1"
    serve(f"{__file__}:create_app", host=args.host, port=args.port, factory=True)


if __name__ == "__main__":
    main()
