"""A Control Tower stand-in: serves a directory of project manifests over its real HTTP API.

Run it with ``python tests/standins/control_tower.py --port N --manifests DIR [--secret S]``.

- ``GET /manifests`` → ``{"manifests": [{"project_id", "project_name"}...], "count": N}``
- ``GET /manifests/{project_id}`` → the manifest file ``DIR/{project_id}.json``; 404
  ``{"detail": "Manifest not found: X"}``; 400 for ids outside ``^[a-zA-Z0-9_-]+$``
- ``GET /manifests/{project_id}/modules/{name}`` → one module entry, or 404
- with ``--secret``, requests without the matching ``X-DSPAI-Client-Secret`` get 401
- like the real service, ``created_at``/``updated_at`` missing from a stored manifest are filled
  with the current time on every answer (so they must never be taken as change markers)

Files are read on every request, so a test changes what it serves by rewriting them.
``GET /_ct/stats`` counts manifest requests per project id; ``POST /_ct/reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PROJECT_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


class ControlTower:
    def __init__(self, directory: Path, secret: str | None) -> None:
        self.directory = directory
        self.secret = secret.encode() if secret else None
        self.calls: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # served without the lifespan protocol: nothing to set up
            return
        status, body = self._answer(scope)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(body)})

    def _answer(self, scope: Scope) -> tuple[int, Any]:
        path: str = scope["path"]
        if path == "/_ct/stats":
            return 200, dict(self.calls)
        if path == "/_ct/reset":
            self.calls.clear()
            return 200, {}
        if self.secret is not None:
            given = dict(scope["headers"]).get(b"x-dspai-client-secret")
            if given != self.secret:
                return 401, {"detail": "Invalid or missing client secret"}
        parts = [part for part in path.split("/") if part]
        if parts == ["manifests"]:
            listing = [
                {"project_id": m["project_id"], "project_name": m.get("project_name", "")}
                for m in (self._load(p.stem) for p in sorted(self.directory.glob("*.json")))
                if m is not None
            ]
            return 200, {"manifests": listing, "count": len(listing)}
        if len(parts) < 2 or parts[0] != "manifests":
            return 404, {"detail": "Not Found"}
        project = parts[1]
        self.calls[project] += 1
        if not _PROJECT_ID.match(project):
            return 400, {"detail": "Invalid project_id"}
        manifest = self._load(project)
        if manifest is None:
            return 404, {"detail": f"Manifest not found: {project}"}
        if len(parts) == 2:
            return 200, manifest
        if len(parts) == 4 and parts[2] == "modules":
            for module in manifest.get("modules", []):
                if module.get("name") == parts[3]:
                    return 200, module
            return 404, {"detail": f"Module not found: {parts[3]}"}
        return 404, {"detail": "Not Found"}

    def _load(self, project: str) -> dict[str, Any] | None:
        try:
            manifest: dict[str, Any] = orjson.loads(
                (self.directory / f"{project}.json").read_bytes()
            )
        except FileNotFoundError:
            return None
        now = datetime.now(UTC).isoformat()
        manifest.setdefault("created_at", now)
        manifest.setdefault("updated_at", now)
        return manifest


def create_app() -> ControlTower:
    """Granian's factory target: the worker reads its settings back from the environment."""
    return ControlTower(
        Path(os.environ["CT_STANDIN_MANIFESTS"]), os.environ.get("CT_STANDIN_SECRET")
    )


def main() -> None:
    from serving import serve  # beside this script, which Python puts first on sys.path

    parser = argparse.ArgumentParser(description="Control Tower stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--manifests", type=Path, required=True)
    parser.add_argument("--secret")
    args = parser.parse_args()
    os.environ["CT_STANDIN_MANIFESTS"] = str(args.manifests.resolve())
    if args.secret:
        os.environ["CT_STANDIN_SECRET"] = args.secret
    serve(f"{__file__}:create_app", host=args.host, port=args.port, factory=True)


if __name__ == "__main__":
    main()
