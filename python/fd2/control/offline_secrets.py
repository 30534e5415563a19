"""Secrets and environment for `fd2 check` and `fd2 routes`: everything checked, no value read.

A manifest is compiled by the real route builder, but no secret is resolved: each reference is
checked for its form (and `env:` ones, when asked, for the variable's presence) and stands in for
itself with a value that is not a secret. `${NAME}` placeholders read the environment as the
gateway would; a variable that is not set here stands in too, unless presence is asked for.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Final, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fd2.control.secrets import Secret, SecretBackend, SecretResolver
from fd2.control.vault.store import parse_vault_locator
from fd2.serving.errors import SecretError

_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNSET_STAND_IN: Final = "http://unset.fd2-check.invalid"
"""What a `${NAME}` placeholder reads for a variable that is not set here (URL-shaped: most such
placeholders build upstream URLs)."""

Shape = Literal["text", "pem"]


class OfflineSecrets(SecretResolver):
    """A resolver that reads nothing: references are checked, then stand in for themselves.

    `shape` says what the stand-in values look like: `text` (64 hex digits, which fit a token
    secret, an API key, a 32-byte key in hex and base64 alike) or `pem` (a public key), for the
    places that parse key material."""

    def __init__(
        self, *, shape: Shape = "text", check_env: bool = False, environ: Mapping[str, str]
    ) -> None:
        super().__init__(environ=environ)
        self._shape = shape
        self._check_env = check_env
        self._environ_seen = environ
        self.references: set[str] = set()
        """Every reference met, in any form (the valid ones stood in)."""

    def with_backends(self, backends: Mapping[str, SecretBackend]) -> SecretResolver:
        return self  # no backend is ever called: a project's Vault is not contacted either

    def resolve(self, reference: str) -> Secret:
        self.references.add(reference)
        scheme, sep, locator = reference.partition(":")
        if not sep:
            raise SecretError(f"'{reference[:6]}…' is not a secret reference")
        if scheme == "env":
            if not _ENV_NAME.match(locator):
                raise SecretError(f"secret reference {reference!r} names no valid variable")
            if self._check_env and locator not in self._environ_seen:
                raise SecretError(f"secret reference {reference!r}: variable {locator} is not set")
        elif scheme == "file":
            if not locator.strip():
                raise SecretError(f"secret reference {reference!r} names no file")
        elif scheme == "config":
            if not all(part.strip() for part in locator.split(".")):
                raise SecretError(f"secret reference {reference!r} is not a dotted path")
        elif scheme == "vault":
            parse_vault_locator(reference, locator)
        else:
            # `encrypted:` and anything else fail as they would in the gateway.
            return SecretResolver(environ={}).resolve(reference)
        return Secret(stand_in(reference, self._shape), reference)


def stand_in(reference: str, shape: Shape) -> str:
    if shape == "pem":
        return _public_key_pem()
    return hashlib.sha256(reference.encode()).hexdigest()


_pem: list[str] = []


def _public_key_pem() -> str:
    if not _pem:
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        _pem.append(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode())
    return _pem[0]


class PlaceholderEnviron(Mapping[str, str]):
    """The process environment as `${NAME}` placeholders see it in a check: a variable that is
    not set reads as a stand-in (recorded in `unset`), or, with `check_env`, as missing."""

    def __init__(self, *, check_env: bool, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._check_env = check_env
        self.unset: set[str] = set()

    def __getitem__(self, name: str) -> str:
        value = self._environ.get(name)
        if value is not None:
            return value
        self.unset.add(name)
        if self._check_env:
            raise KeyError(name)
        return UNSET_STAND_IN

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._environ or not self._check_env)

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)
