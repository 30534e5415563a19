"""Request ids: keep a sane one the client sent, otherwise make one."""

from __future__ import annotations

import os
import re
from binascii import hexlify
from typing import Final

_SANE = re.compile(rb"^[A-Za-z0-9._:+=/-]{1,128}$")
_ID_BYTES: Final = 16
_BATCH: Final = 256
"""Ids drawn from the OS per `getrandom` call: one system call per 256 requests, not each."""


class _RandomIds:
    __slots__ = ("_hex", "_next")

    def __init__(self) -> None:
        self._hex = b""
        self._next = 0

    def take(self) -> bytes:
        start = self._next
        if start >= len(self._hex):
            self._hex = hexlify(os.urandom(_ID_BYTES * _BATCH))
            start = 0
        self._next = start + 2 * _ID_BYTES
        return self._hex[start : start + 2 * _ID_BYTES]


_ids = _RandomIds()


def request_id_from(header: bytes | None) -> bytes:
    if header is not None and _SANE.match(header):
        return header
    # 128 random bits as 32 hex digits, the form uuid4().hex had. Not secret (they are echoed to
    # clients and logs), only unique; a forked worker must not repeat its parent's batch, so the
    # batch is dropped after a fork.
    return _ids.take()


def _forget_batch() -> None:
    _ids._hex = b""
    _ids._next = 0


os.register_at_fork(after_in_child=_forget_batch)
