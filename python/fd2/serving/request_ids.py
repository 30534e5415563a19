"""Request ids: keep a sane one the client sent, otherwise make one."""

from __future__ import annotations

import re
import uuid

_SANE = re.compile(rb"^[A-Za-z0-9._:+=/-]{1,128}$")


def request_id_from(header: bytes | None) -> bytes:
    if header is not None and _SANE.match(header):
        return header
    return uuid.uuid4().hex.encode()
