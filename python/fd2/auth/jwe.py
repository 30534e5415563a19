"""JWE compact tokens with `alg: dir` and `enc: A256GCM`: the one form the JWT service issues.

Only that pair is accepted, uncompressed (anything else is refused before a key is touched).
Decryption is AES-256-GCM from `cryptography`, with the protected header as additional
authenticated data. The plaintext is `{"jwt": "<signed token>"}` (what the JWT service seals) or
the signed token itself.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fd2.serving.errors import ConfigError


class JweError(Exception):
    """The JWE could not be decrypted (shape, header, key or tag): one reason for every case."""


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def content_key(raw: str) -> bytes:
    """A 32-byte key from a reference's value: 32 raw characters, 64 hex digits or base64."""
    if len(raw) == 64 and all(c in "0123456789abcdefABCDEF" for c in raw):
        return bytes.fromhex(raw)
    try:
        decoded = _b64url(raw.replace("+", "-").replace("/", "_").rstrip("="))
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == 32:
        return decoded
    if len(raw.encode()) == 32:
        return raw.encode()
    raise ConfigError("jwe_config.encryption_key must be a 32-byte key (raw, hex or base64)")


class JweDecrypter:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def decrypt(self, token: str) -> str:
        parts = token.split(".")
        if len(parts) != 5:
            raise JweError
        protected, encrypted_key, iv, ciphertext, tag = parts
        try:
            header: Any = orjson.loads(_b64url(protected))
            if (
                not isinstance(header, dict)
                or header.get("alg") != "dir"
                or header.get("enc") != "A256GCM"
                or encrypted_key  # `dir` carries no encrypted key
                or "zip" in header  # compressed plaintext is not accepted
            ):
                raise JweError
            plain = self._aead.decrypt(
                _b64url(iv), _b64url(ciphertext) + _b64url(tag), protected.encode("ascii")
            )
            return _sealed_token(plain)
        except (InvalidTag, ValueError, binascii.Error, orjson.JSONDecodeError):
            raise JweError from None


def _sealed_token(plain: bytes) -> str:
    # The JWT service seals `{"jwt": "<token>"}`; a bare nested token is accepted as well.
    if plain.startswith(b"{"):
        value: Any = orjson.loads(plain)
        token = value.get("jwt") if isinstance(value, dict) else None
        if not isinstance(token, str):
            raise JweError
        return token
    return plain.decode("ascii")
