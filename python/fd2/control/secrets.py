"""Secret references (`env:`, `file:`, `config:`, `vault:`, `encrypted:`) and the Secret value type.

A resolved secret is a `Secret`: its repr never shows the value, and every value revealed is
registered with the log redactor so that it cannot leak through a log line either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec

from fd2.serving.errors import SecretError
from fd2.telemetry.logs import register_secret_value

_SCHEMES: Final = ("env:", "file:", "vault:", "config:", "encrypted:")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Secret:
    """A secret value that does not show itself in reprs, str(), logs or errors."""

    __slots__ = ("_reference", "_value")

    def __init__(self, value: str, reference: str = "") -> None:
        self._value = value
        self._reference = reference
        register_secret_value(value)

    def reveal(self) -> str:
        return self._value

    @property
    def reference(self) -> str:
        """Where the value came from (safe to show: a reference, not the value)."""
        return self._reference

    def __repr__(self) -> str:
        return f"Secret({self._reference or 'literal'}: ***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("Secret values cannot be pickled")


def is_secret_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_SCHEMES)


class SecretBackend(Protocol):
    """A store that resolves one scheme's references (e.g. `fd2.control.vault.store.VaultStore`)."""

    def resolve(self, reference: str, locator: str) -> str: ...


class ResolvesSecrets(Protocol):
    """Anything that turns a reference into a `Secret` (a resolver, or one that records usage)."""

    def resolve(self, reference: str) -> Secret: ...


class SecretResolver:
    """Resolves references to `Secret`s. Backends can be plugged in per scheme (e.g. `vault`)."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        backends: Mapping[str, SecretBackend] | None = None,
    ) -> None:
        self._environ = environ if environ is not None else os.environ
        self._config_file = config_file
        self._config: dict[str, Any] | None = None
        self._backends = dict(backends or {})
        self._handlers: dict[str, Callable[[str, str], str]] = {
            "env": self._from_env,
            "file": self._from_file,
            "config": self._from_config,
            "vault": self._from_backend,
            "encrypted": self._from_backend,
        }

    def with_backends(self, backends: Mapping[str, SecretBackend]) -> SecretResolver:
        """A resolver reading the same environment and secrets file, with `backends` added."""
        scoped = SecretResolver(
            environ=self._environ,
            config_file=self._config_file,
            backends={**self._backends, **backends},
        )
        scoped._config = self._config
        return scoped

    def resolve(self, reference: str) -> Secret:
        scheme, sep, locator = reference.partition(":")
        handler = self._handlers.get(scheme)
        if not sep or handler is None:
            raise SecretError(f"'{_describe(reference)}' is not a secret reference")
        return Secret(handler(reference, locator), reference)

    def _from_env(self, reference: str, name: str) -> str:
        if not _ENV_NAME.match(name):
            raise SecretError(f"secret reference {reference!r} names no valid variable")
        value = self._environ.get(name)
        if value is None:
            raise SecretError(f"secret reference {reference!r}: variable {name} is not set")
        return value

    def _from_file(self, reference: str, path: str) -> str:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretError(f"secret reference {reference!r}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(
                f"secret reference {reference!r}: unreadable ({type(exc).__name__})"
            ) from None
        return text[:-1] if text.endswith("\n") else text

    def _from_config(self, reference: str, dotted: str) -> str:
        if self._config_file is None:
            raise SecretError(f"secret reference {reference!r}: no secrets file is configured")
        if self._config is None:
            try:
                self._config = msgspec.json.decode(self._config_file.read_bytes(), type=dict)
            except (OSError, msgspec.DecodeError) as exc:
                raise SecretError(
                    f"the secrets file cannot be read ({type(exc).__name__})"
                ) from None
        node: Any = self._config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise SecretError(f"secret reference {reference!r}: no such key")
            node = node[part]
        if not isinstance(node, str | int | float):
            raise SecretError(f"secret reference {reference!r}: not a scalar value")
        return str(node)

    def _from_backend(self, reference: str, locator: str) -> str:
        scheme = reference.partition(":")[0]
        backend = self._backends.get(scheme)
        if backend is None and scheme == "encrypted":
            raise SecretError(
                f"secret reference {_describe(reference)!r}: encrypted: values are not supported "
                "by fd2; keep the secret in Vault, a file, the environment or the secrets file"
            )
        if backend is None:
            raise SecretError(
                f"secret reference {reference!r}: no {scheme} backend is configured in this gateway"
            )
        return backend.resolve(reference, locator)


def _describe(value: str) -> str:
    # Never echo something that might be a literal secret: show only its first characters.
    return value[:6] + "…" if len(value) > 6 else value
