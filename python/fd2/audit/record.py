"""One audit record: who asked what of which route, what it cost and what came of it.

Never the credential: the caller is the key id (`key:<id>`) or the JWT subject (`jwt:<sub>`).
Content (the request and answer bodies, after redaction) only when the module's `audit` block
says `content: true`.
"""

from __future__ import annotations

from typing import Any

import msgspec


class AuditSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    content: bool = False
    """Also record the request body and the answer (as sent, after redaction)."""
    max_content_bytes: int = 64 * 1024
    """Content past this size is cut (and marked so)."""


class AuditRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    time: str
    request_id: str
    project: str
    module: str
    environment: str
    method: str
    endpoint: str
    caller: str | None = None
    model: str | None = None
    deployment: str | None = None
    status: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    latency_ms: float = 0.0
    cache: str | None = None
    redactions: dict[str, int] | None = None
    error: str | None = None
    request: Any = None
    response: Any = None
    truncated: bool = False


ENCODER = msgspec.json.Encoder()
