"""The exchanges recorded against the real Control Tower (see ct_record.py): what each case sends.

Every case leaves the server as it found it (it deletes what it created), so cases can run one
after another on one server with an empty manifest directory.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

Step = dict[str, Any]
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "manifests"


def call(method: str, path: str, secret: str | None = "superuser", **request: Any) -> Step:
    sent: dict[str, Any] = {"method": method, "path": path, **request}
    if secret is not None and method != "GET":
        sent["secret"] = secret
    return {"request": sent}


def post(manifest: Any, secret: str | None = "superuser") -> Step:
    return call("POST", "/manifests", secret, json={"manifest": manifest})


def put(project: str, manifest: Any, secret: str | None = "superuser") -> Step:
    return call("PUT", f"/manifests/{project}", secret, json={"manifest": manifest})


def get(path: str) -> Step:
    return call("GET", path)


def delete(project: str, secret: str | None = "superuser") -> Step:
    return call("DELETE", f"/manifests/{project}", secret)


def file(name: str, content: Any) -> Step:
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    return {"file": {"name": name, "text": text}}


def round_trip(manifest: dict[str, Any], *modules: str) -> list[Step]:
    """POST, read it back whole, per module, and in the listing, then DELETE."""
    project = manifest["project_id"]
    steps = [post(manifest), get(f"/manifests/{project}"), get(f"/manifests/{project}/modules")]
    steps += [get(f"/manifests/{project}/modules/{name}") for name in modules]
    return [*steps, get("/manifests"), delete(project), get(f"/manifests/{project}")]


def project(project_id: str, *modules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "project_name": f"{project_id} project",
        **fields,
        "modules": list(modules),
    }


def module(module_type: str, name: Any, config: Any, **fields: Any) -> dict[str, Any]:
    return {"module_type": module_type, "name": name, **fields, "config": config}


def example(name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return manifest


def with_fd2_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """acme with fd2's own settings moved under metadata.fd2 (docs/manifests.md)."""
    moved = copy.deepcopy(manifest)
    moved["project_id"] = "acme-fd2"
    settings: dict[str, Any] = {
        "api_keys": [
            {"id": "ci", "hash": "sha256:" + "ab" * 32, "modules": ["chat"], "expires": None}
        ],
        "modules": {},
    }
    for entry in moved["modules"]:
        own: dict[str, Any] = {}
        for key in ("auth", "limits", "dependencies"):
            if key in entry:
                own[key] = entry[key]
        for key in ("api_key", "timeouts"):
            if key in entry["config"]:
                own.setdefault("config", {})[key] = entry["config"][key]
        if own:
            settings["modules"][entry["name"]] = own
    settings["modules"]["chat"]["auth"] = {"mode": "any", "api_keys": True, "jwt": True}
    settings["modules"]["chat"]["limits"] = {"requests_per_minute": 60, "tokens_per_minute": 1000}
    settings["modules"]["chat"]["config"]["timeouts"] = {"connect_s": 2, "read_s": "30"}
    moved["metadata"] = {**moved.get("metadata", {}), "fd2": settings}
    return moved
