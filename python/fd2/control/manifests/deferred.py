"""Config values resolved when they are used rather than when the route is compiled.

A `jwt_config` module's `claims` are read only by the JWT service, when a token is requested:
a placeholder or secret reference inside them that cannot be resolved must fail that token
request, never the module, its token endpoint or the verifier of the routes that depend on it.
"""

from __future__ import annotations

from typing import Any

from fd2.control.manifests.placeholders import PlaceholderContext, resolve_value
from fd2.control.secrets import ResolvesSecrets, is_secret_reference
from fd2.serving.errors import ConfigError


class DeferredValueError(ConfigError):
    """A deferred value that cannot be resolved: `path` says where, `reason` why (for logs only:
    it may name a secret reference, never a secret's value)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} cannot be resolved")
        self.path = path
        self.reason = reason


class DeferredValue:
    """A config value kept as written, with what it needs to be resolved later."""

    __slots__ = ("_context", "_path", "_raw", "_secrets")

    def __init__(
        self, raw: Any, context: PlaceholderContext, secrets: ResolvesSecrets, path: str
    ) -> None:
        self._raw = raw
        self._context = context
        self._secrets = secrets
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def resolve(self) -> Any:
        """Placeholders substituted and every secret reference a `Secret`.

        Blocking (secret files, Vault): call it off the event loop. Raises `DeferredValueError`
        naming the innermost path that failed."""
        return self._walk(self._raw, self._path)

    def __repr__(self) -> str:
        return f"DeferredValue({self._path})"

    def _walk(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            return self._references(self._placeholders(value, path), path)
        if isinstance(value, dict):
            resolved: dict[str, Any] = {}
            for key, item in value.items():
                name = self._placeholders(key, f"{path}.<key {key}>") if "${" in key else key
                if not isinstance(name, str):
                    raise DeferredValueError(path, "a map key must resolve to a string")
                resolved[name] = self._walk(item, f"{path}.{name}")
            return resolved
        if isinstance(value, list):
            return [self._walk(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def _placeholders(self, text: str, path: str) -> Any:
        if "${" not in text:
            return text
        try:
            return resolve_value(text, self._context, path)
        except ConfigError as exc:
            raise DeferredValueError(path, exc.message) from None

    def _references(self, value: Any, path: str) -> Any:
        # Reached maps keep their strings as written: references inside them are resolved here.
        if isinstance(value, str) and is_secret_reference(value):
            try:
                return self._secrets.resolve(value)
            except ConfigError as exc:
                raise DeferredValueError(path, exc.message) from None
        if isinstance(value, dict):
            return {key: self._references(item, f"{path}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self._references(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value  # a Secret reached through a placeholder, or a plain value
