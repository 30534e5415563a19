"""fd2's own settings, typed with msgspec. Every field has a `--flag` and an `FD2_*` variable."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

SETTINGS_ENV = "FD2_SETTINGS_JSON"
"""How `fd2 serve` hands its parsed settings to Granian's worker processes."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    manifests: str | None = None
    """A directory of manifest files (the embedded default)."""
    control_tower: str | None = None
    control_tower_secret_ref: str | None = None
    default_env: str = "development"
    base_domain: str | None = None
    """Enables `{project}-{module}.<base domain>` routing."""
    max_body_bytes: int = 10 * 1024 * 1024
    body_timeout: float = 60.0
    """Seconds a request body may take to arrive once it has started (408 after)."""
    access_log: bool = False
    """One log line per request: id, method, path, status, duration."""
    shutdown_timeout: float = 30.0
    manifest_ttl: float = 60.0
    manifest_poll: float = 1.0
    """How often the manifest directory is checked for changes (seconds)."""
    module_packages: tuple[str, ...] = ()
    """Extra packages a manifest's runtime.implementation may name classes in."""
    secrets_file: str | None = None
    """A JSON file that `config:` secret references read from."""
    upstream_max_connections: int = 1024
    """Upstream connections per worker (idle ones are kept alive for reuse)."""
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    total_timeout: float = 600.0
    log_level: str = "info"
    limits_on_redis_failure: str = "open"
    """`open`: decide with per-process limits while Redis is unreachable; `closed`: refuse (503)."""
    api_key_pepper_ref: str | None = None
    """Secret reference of the HMAC key API-key hashes are made with (`fd2 keys new` uses it)."""
    default_auth: str = "api_key"
    """What a module whose manifest says nothing about auth asks for: `api_key` (a project API
    key), or `none` to serve such modules open, an explicit choice (docs/security.md)."""

    # --- Control Tower client, manifest cache, operator view, Redis sharing (issue 5) ---
    control_tower_ca: str | None = None
    """A PEM CA bundle for the Control Tower's TLS certificate (system store otherwise)."""
    control_tower_connect_timeout: float = 2.0
    control_tower_read_timeout: float = 5.0
    control_tower_retries: int = 2
    """Extra attempts for a failed Control Tower GET (jittered exponential backoff)."""
    manifest_max_stale: float = 3600.0
    """Seconds past the TTL a cached manifest keeps serving while the Control Tower fails."""
    manifest_negative_ttl: float = 5.0
    """Seconds an unknown project (or a failed first fetch) is remembered before asking again."""
    unknown_project_rate: float = 20.0
    """Control Tower lookups per second allowed for projects not cached (floods of random names)."""
    admin_token_ref: str | None = None
    """Secret reference of the bearer token for /admin/*; without it /admin/* answers 404."""
    redis_url: str | None = None
    """Shared by replicas: manifest copies, change notices, rate limits, Redis-stored API keys."""

    # --- Vault: where `vault:` secret references are read when a project has no `vault` module.
    vault_addr: str | None = None
    """Vault's base URL; unset: only projects with a `vault` module can use `vault:` references."""
    vault_auth: str = "token"
    vault_token_ref: str | None = None
    vault_role_id_ref: str | None = None
    vault_secret_id_ref: str | None = None
    vault_approle_mount: str = "approle"
    vault_namespace: str | None = None
    vault_verify: bool = True
    vault_ca_bundle: str | None = None
    vault_client_cert: str | None = None
    vault_client_key: str | None = None
    vault_timeout: float = 5.0
    vault_secret_ttl: float = 300.0
    """Seconds a secret read from Vault is used before the background refresh rereads it."""
    # --- end of Vault settings

    # --- Hardening (issue 19): connections, protocol limits, Redis waits, environment placeholders
    http: str = "1"
    """`1`: HTTP/1.1 only, where every connection gets the header timeout; `auto`: HTTP/1.1 and
    cleartext HTTP/2 (prior knowledge) on the same port: an opt-in, see docs/operations.md."""
    header_timeout: float = 30.0
    """Seconds a connection may take to send a complete request head, counted from its opening
    and, on a kept-alive connection, from the end of the previous answer (the idle timeout)."""
    max_connections: int = 16384
    """Open client connections per worker; past it the worker accepts no more until one ends."""
    max_header_bytes: int = 65536
    """Largest HTTP/2 header list (431 above); HTTP/1.1 heads are bounded by the server itself."""
    max_headers: int = 100
    """Most header fields in a request (431 above), as HTTP/1.1 already enforces."""
    health_port: int | None = None
    """A second port answering only `GET /healthz`, outside the serving port's connection cap."""
    redis_timeout: float = 0.05
    """Seconds one rate-limit or API-key call may wait on Redis before the failure policy."""
    manifest_env_allow: tuple[str, ...] = ()
    """Environment variables `${NAME}` placeholders may read besides `FD2_MANIFEST_*`: names, or
    prefixes ending in `*` (an explicit opt-in; see docs/security.md)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        if self.health_port is not None and not 1 <= self.health_port <= 65535:
            raise ValueError("health_port must be 1..65535")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")
        for name in (
            "body_timeout",
            "shutdown_timeout",
            "manifest_ttl",
            "manifest_poll",
            "connect_timeout",
            "read_timeout",
            "total_timeout",
            "control_tower_connect_timeout",
            "control_tower_read_timeout",
            "manifest_negative_ttl",
            "unknown_project_rate",
            "vault_timeout",
            "vault_secret_ttl",
            "header_timeout",
            "redis_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.control_tower_retries < 0 or self.manifest_max_stale < 0:
            raise ValueError("control_tower_retries and manifest_max_stale must not be negative")
        if self.default_auth not in ("api_key", "none"):
            raise ValueError("default_auth must be api_key or none")
        if self.limits_on_redis_failure not in ("open", "closed"):
            raise ValueError("limits_on_redis_failure must be open or closed")
        if self.http not in ("1", "auto"):
            raise ValueError("http must be 1 or auto")
        if self.max_connections < 1 or self.max_header_bytes < 1024 or self.max_headers < 1:
            raise ValueError("max_connections, max_headers >= 1 and max_header_bytes >= 1024")
        if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be debug, info, warning or error")


TUPLE_FIELDS = frozenset(("module_packages", "manifest_env_allow"))
"""Settings given as comma-separated lists in flags and variables."""


def env_name(field: str) -> str:
    return "FD2_" + field.upper()


def settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `FD2_SETTINGS_JSON` (set by `fd2 serve`), else from `FD2_*` variables."""
    environ = os.environ if environ is None else environ
    packed = environ.get(SETTINGS_ENV)
    if packed:
        return msgspec.json.decode(packed, type=Settings)
    values: dict[str, object] = {}
    for field in msgspec.structs.fields(Settings):
        raw = environ.get(env_name(field.name))
        if raw is not None:
            values[field.name] = (
                tuple(part.strip() for part in raw.split(",") if part.strip())
                if field.name in TUPLE_FIELDS
                else raw
            )
    return msgspec.convert(values, Settings, strict=False)
