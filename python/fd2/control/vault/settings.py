"""Where a Vault is and how fd2 logs in: from fd2's own settings or a project's `vault` module.

Credentials (token, AppRole role_id/secret_id) are themselves secret references (`env:`, `file:`,
`config:`), kept as references here and resolved only when fd2 logs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from fd2.config import Settings
from fd2.serving.errors import ConfigError

AuthMethod = Literal["token", "approle"]


class VaultSettings(msgspec.Struct, frozen=True, kw_only=True):
    """One Vault instance. Hashable: equal settings share one session and one secret cache."""

    address: str
    auth_method: AuthMethod = "token"
    token_ref: str | None = None
    role_id_ref: str | None = None
    secret_id_ref: str | None = None
    approle_mount: str = "approle"
    namespace: str | None = None
    verify: bool = True
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout_s: float = 5.0
    secret_ttl_s: float = 300.0
    """How long a secret read from Vault is used before the background refresh rereads it."""

    def __post_init__(self) -> None:
        if not self.address.startswith(("http://", "https://")):
            raise ConfigError("vault address must be an http:// or https:// URL")
        if self.auth_method == "token" and not self.token_ref:
            raise ConfigError("vault token auth needs a token reference")
        if self.auth_method == "approle" and not (self.role_id_ref and self.secret_id_ref):
            raise ConfigError("vault approle auth needs role_id and secret_id references")
        if self.client_key and not self.client_cert:
            raise ConfigError("a vault client key needs a client certificate")
        if self.timeout_s <= 0 or self.secret_ttl_s <= 0:
            raise ConfigError("vault timeout and secret TTL must be positive")

    def describe(self) -> str:
        """Safe to log: where and how, never a credential."""
        namespace = f" namespace {self.namespace}" if self.namespace else ""
        return f"{self.address} ({self.auth_method}{namespace})"


def settings_from_fd2(settings: Settings) -> VaultSettings | None:
    """fd2's own Vault (`--vault-addr` and friends); None when no address is set."""
    if not settings.vault_addr:
        return None
    return VaultSettings(
        address=settings.vault_addr,
        auth_method=_auth_method(settings.vault_auth),
        token_ref=settings.vault_token_ref,
        role_id_ref=settings.vault_role_id_ref,
        secret_id_ref=settings.vault_secret_id_ref,
        approle_mount=settings.vault_approle_mount,
        namespace=settings.vault_namespace,
        verify=settings.vault_verify,
        ca_bundle=settings.vault_ca_bundle,
        client_cert=settings.vault_client_cert,
        client_key=settings.vault_client_key,
        timeout_s=settings.vault_timeout,
        secret_ttl_s=settings.vault_secret_ttl,
    )


def settings_from_module_config(config: Mapping[str, Any], *, default_ttl: float) -> VaultSettings:
    """The first instance of a Control Tower `vault` module (placeholders already resolved).

    Shape: `{"vault_instances": [{"vault_url", "auth_method", "token" | "role_id"+"secret_id",
    "namespace", "verify_ssl", "ca_cert", "client_cert", "client_key", ...}], "cache_ttl": s}`.
    """
    instances = config.get("vault_instances")
    if isinstance(instances, list) and instances:
        instance = instances[0]
    elif "vault_url" in config:
        instance = config  # a module that describes one instance directly
    else:
        raise ConfigError("vault module config has no vault_instances")
    if not isinstance(instance, dict):
        raise ConfigError("vault module config: vault_instances[0] must be an object")
    ttl = config.get("cache_ttl", instance.get("cache_ttl", default_ttl))
    try:
        return VaultSettings(
            address=str(instance["vault_url"]),
            auth_method=_auth_method(instance.get("auth_method", "token")),
            token_ref=_optional_str(instance.get("token")),
            role_id_ref=_optional_str(instance.get("role_id")),
            secret_id_ref=_optional_str(instance.get("secret_id")),
            approle_mount=str(instance.get("approle_mount_point", "approle")),
            namespace=_optional_str(instance.get("namespace")),
            verify=_as_bool(instance.get("verify_ssl", True)),
            ca_bundle=_optional_str(instance.get("ca_cert")),
            client_cert=_optional_str(instance.get("client_cert")),
            client_key=_optional_str(instance.get("client_key")),
            timeout_s=float(instance.get("timeout", 5.0)),
            secret_ttl_s=float(ttl),
        )
    except KeyError:
        raise ConfigError("vault module config: vault_instances[0].vault_url is missing") from None
    except (TypeError, ValueError):
        raise ConfigError("vault module config: a number or flag has the wrong type") from None


def _auth_method(value: object) -> AuthMethod:
    if value == "token":
        return "token"
    if value == "approle":
        return "approle"
    raise ConfigError(f"vault auth_method {value!r} is not supported (token or approle)")


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"false", "0", "no", "off"}
    return bool(value)
