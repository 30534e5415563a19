"""Plays Control Tower exchanges (ct_recorded/*.json) against a running server, real or stand-in.

A case is a list of steps, each either
- ``{"request": {"method", "path", "secret"?, "json"? | "body"?, "content_type"?}, "response":
  {"status", "body"}}``: `secret` is "superuser" (the server's superuser secret is sent),
  "wrong", or absent (no header); `json` is sent as JSON, `body` as raw text; or
- ``{"file": {"name", "text"}}``: the server's manifest directory gets that file, as a manifest
  written there by hand (the real service reads such files like any other).

Timestamps the server made up (`created_at`/`updated_at` within ten minutes of now, in the real
service's naive ISO form) become "<now>" so that answers compare across runs; any other value,
or a "now" in another form, is kept as it is and so compared. `GET /manifests` entries are sorted
by project_id.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

NOW = "<now>"
_NAIVE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{6})?$")
_WRONG_SECRET = "not-the-superuser-secret"


def play(
    base_url: str, steps: list[dict[str, Any]], *, secret: str, directory: Path
) -> list[dict[str, Any]]:
    """Runs the steps; returns them with the answers this server gave in place of `response`."""
    played = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for step in steps:
            if "file" in step:
                (directory / step["file"]["name"]).write_text(step["file"]["text"])
                played.append(step)
                continue
            played.append({**step, "response": _send(client, step["request"], secret)})
    return played


def _send(client: httpx.Client, request: dict[str, Any], secret: str) -> dict[str, Any]:
    headers = {}
    if request.get("secret") == "superuser":
        headers["X-DSPAI-Client-Secret"] = secret
    elif request.get("secret") == "wrong":
        headers["X-DSPAI-Client-Secret"] = _WRONG_SECRET
    content: bytes | None = None
    if "json" in request:
        content = json.dumps(request["json"]).encode()
        headers["content-type"] = "application/json"
    elif "body" in request:
        content = request["body"].encode()
    if "content_type" in request:
        headers["content-type"] = request["content_type"]
    response = client.request(request["method"], request["path"], content=content, headers=headers)
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if request["path"] == "/manifests" and request["method"] == "GET" and response.is_success:
        # Listed in directory order by the real service (no order to speak of): compared sorted.
        body["manifests"].sort(key=lambda entry: entry["project_id"])
    return {"status": response.status_code, "body": normalised(body)}


def normalised(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: normalised(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if key in ("created_at", "updated_at") and isinstance(value, str) and _is_now(value):
        return NOW
    return value


def _is_now(text: str) -> bool:
    if not _NAIVE_ISO.match(text):
        return False
    moment = datetime.fromisoformat(text)
    return abs(moment - datetime.now()) < timedelta(minutes=10)


def canonical(value: Any) -> str:
    """Order-sensitive text of a JSON value (field order is part of what the models produce)."""
    return json.dumps(value, indent=1, ensure_ascii=False)
