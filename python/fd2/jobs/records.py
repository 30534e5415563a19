"""A job as Redis keeps it (a hash of strings), the caller's identity it runs as, and the JSON
view clients see."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson

from fd2.auth.identity import Identity
from fd2.limits.specs import LimitSpec


def new_id(prefix: str) -> str:
    """An id that is unguessable (ids are not secrets, but one project must not enumerate
    another's) and sorts roughly by time."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def identity_record(identity: Identity | None) -> str:
    """The caller's identity as captured when the job was submitted: who (a key id or JWT
    subject, never the credential), what it may use, and its limits."""
    if identity is None:
        return ""
    return orjson.dumps(
        {
            "credential": identity.credential,
            "models": sorted(identity.models) if identity.models is not None else None,
            "endpoints": sorted(identity.endpoints) if identity.endpoints is not None else None,
            "limits": [[s.key, s.kind, s.limit, s.interval_us] for s in identity.limit_specs],
        }
    ).decode()


def identity_from_record(raw: str) -> Identity | None:
    if not raw:
        return None
    data = orjson.loads(raw)
    models, endpoints = data.get("models"), data.get("endpoints")
    return Identity(
        str(data["credential"]),
        models=frozenset(models) if models is not None else None,
        endpoints=frozenset(endpoints) if endpoints is not None else None,
        limit_specs=tuple(LimitSpec(k, kind, int(n), int(us)) for k, kind, n, us in data["limits"]),
    )


def decode_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


def _number(record: Mapping[str, str], name: str) -> int | None:
    value = record.get(name)
    return int(value) if value else None


def _json(record: Mapping[str, str], name: str) -> Any:
    value = record.get(name)
    return orjson.loads(value) if value else None


def job_view(record: Mapping[str, str]) -> dict[str, Any]:
    """What `GET /v1/jobs/{id}` shows (never the identity, never the webhook's secret)."""
    webhook = _json(record, "webhook")
    return {
        "job_id": record["id"],
        "object": "job",
        "status": record["status"],
        "module": record["module"],
        "endpoint": record["endpoint"],
        "created_at": _number(record, "created_at"),
        "expires_at": _number(record, "expires_at"),
        "started_at": _number(record, "started_at"),
        "completed_at": _number(record, "completed_at"),
        "attempts": _number(record, "attempts") or 0,
        "result": _json(record, "result"),
        "error": _json(record, "error"),
        "last_error": _json(record, "last_error") if record["status"] == "queued" else None,
        "batch_id": record.get("batch_id") or None,
        "metadata": _json(record, "metadata"),
        "webhook": None
        if webhook is None
        else {
            "url": webhook["url"],
            "status": record.get("webhook_status", "waiting"),
            "deliveries": _json(record, "deliveries") or [],
        },
    }


def submitted_view(record: Mapping[str, str]) -> dict[str, Any]:
    """The 202 answer to a submission."""
    return {
        "job_id": record["id"],
        "object": "job",
        "status": record["status"],
        "created_at": _number(record, "created_at"),
        "expires_at": _number(record, "expires_at"),
        "metadata": _json(record, "metadata"),
    }
