"""fd2's own settings: one table behind every `--flag` and `FD2_*` variable.

Each field carries its type and bounds, its help text, and its group in `fd2 serve --help`
(`SERVING("help", "METAVAR")`); `fd2.settings_table` reads them, and the command line and the
worker processes parse text through it, so a flag and its variable always mean the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Final, Literal

import msgspec

from fd2.settings_table import Group, check_fields, env_name, from_sources

__all__ = ["GROUPS", "SETTINGS_ENV", "Settings", "env_name", "settings_from_environment"]

SETTINGS_ENV = "FD2_SETTINGS_JSON"
"""How `fd2 serve` hands its parsed settings to Granian's worker processes."""

SERVING: Final = Group("serving", "where fd2 listens and how a request finds its environment")
CONNECTIONS: Final = Group(
    "connections and hardening", "what one client may hold or send before fd2 cuts it off"
)
MANIFESTS: Final = Group(
    "manifests and Control Tower",
    "where manifests come from, how long they are kept, what they may read",
)
SECRETS: Final = Group(
    "secrets and Vault", "config: references, and the Vault of projects without a vault module"
)
AUTH: Final = Group("auth and limits", "who may call a module whose manifest names no auth")
REDIS: Final = Group("Redis", "shared by replicas: manifest copies, rate limits, API keys")
UPSTREAM: Final = Group("upstream", "the pooled client modules call their upstreams with")
JOBS: Final = Group("jobs and webhooks", "asynchronous jobs and batches on Redis (docs/jobs.md)")
LOGGING: Final = Group("logging", "what fd2 writes to stderr")
GROUPS: Final = (
    SERVING,
    CONNECTIONS,
    MANIFESTS,
    SECRETS,
    AUTH,
    REDIS,
    UPSTREAM,
    JOBS,
    LOGGING,
)
"""In the order `--help` shows them."""

Seconds = Annotated[float, msgspec.Meta(gt=0)]
Count = Annotated[int, msgspec.Meta(ge=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Capacity = Annotated[int, msgspec.Meta(ge=0, le=1024)]
ListenPort = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Ref = str | None
"""A secret reference (`env:`, `file:`, `config:`, `vault:`), never the secret itself."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # --- serving
    host: Annotated[str, SERVING("address to listen on (the image sets 0.0.0.0)", "ADDRESS")] = (
        "127.0.0.1"
    )
    port: Annotated[Port, SERVING("port to listen on", "PORT")] = 8080
    workers: Annotated[Count, SERVING("worker processes, each with its own event loop")] = 1
    default_env: Annotated[
        str, SERVING("environment when neither X-Environment nor the module names one", "ENV")
    ] = "development"
    base_domain: Annotated[
        str | None, SERVING("enables {project}-{module}.<base domain> routing", "DOMAIN")
    ] = None
    shutdown_timeout: Annotated[
        Seconds, SERVING("seconds in-flight requests and streams get to finish at shutdown")
    ] = 30.0
    health_port: Annotated[
        ListenPort | None,
        SERVING("a second port answering only GET /healthz, outside the connection cap", "PORT"),
    ] = None
    cpu_scheduling: Annotated[
        Literal["batch", "normal"],
        SERVING(
            "batch: a worker's threads other than its event loop's run as SCHED_BATCH (about a "
            "third less CPU per request on a core of its own); normal: Linux's default for all "
            "(for cores shared with busy neighbours)"
        ),
    ] = "batch"

    # --- connections and hardening
    http: Annotated[
        Literal["1", "auto"],
        CONNECTIONS("1: HTTP/1.1 only; auto: HTTP/1.1 and cleartext HTTP/2 on one port (opt-in)"),
    ] = "1"
    header_timeout: Annotated[
        Seconds,
        CONNECTIONS(
            "seconds to send a whole request head, from the connection's opening or the end of "
            "the last answer (so also the keep-alive idle timeout)"
        ),
    ] = 30.0
    max_connections: Annotated[
        Count, CONNECTIONS("open client connections per worker; no more are accepted past it")
    ] = 16384
    max_header_bytes: Annotated[
        Annotated[int, msgspec.Meta(ge=1024)],
        CONNECTIONS("largest HTTP/2 header list (431 above)", "BYTES"),
    ] = 65536
    max_headers: Annotated[Count, CONNECTIONS("most header fields in a request (431 above)")] = 100
    max_body_bytes: Annotated[
        Count,
        CONNECTIONS("largest request body (413 above; refused unread when announced)", "BYTES"),
    ] = 10 * 1024 * 1024
    body_timeout: Annotated[
        Seconds, CONNECTIONS("seconds a request body may take to arrive (408 after)")
    ] = 60.0

    # --- manifests and Control Tower
    manifests: Annotated[str | None, MANIFESTS("directory of manifest files", "DIR")] = None
    manifest_poll: Annotated[
        Seconds, MANIFESTS("seconds between checks of the manifest directory for changes")
    ] = 1.0
    control_tower: Annotated[
        str | None, MANIFESTS("Control Tower base URL (GET /manifests/{project_id})", "URL")
    ] = None
    control_tower_secret_ref: Annotated[
        Ref, MANIFESTS("secret reference of the X-DSPAI-Client-Secret header", "REF")
    ] = None
    control_tower_ca: Annotated[
        str | None, MANIFESTS("PEM CA bundle for the Control Tower's TLS certificate", "FILE")
    ] = None
    control_tower_connect_timeout: Annotated[
        Seconds, MANIFESTS("seconds to connect to the Control Tower")
    ] = 2.0
    control_tower_read_timeout: Annotated[
        Seconds, MANIFESTS("seconds to wait for a Control Tower answer")
    ] = 5.0
    control_tower_retries: Annotated[
        Annotated[int, msgspec.Meta(ge=0)],
        MANIFESTS("extra attempts for a failed Control Tower GET (jittered backoff)", "N"),
    ] = 2
    manifest_ttl: Annotated[
        Seconds, MANIFESTS("seconds a Control Tower manifest is used before it is revalidated")
    ] = 60.0
    manifest_max_stale: Annotated[
        Annotated[float, msgspec.Meta(ge=0)],
        MANIFESTS("seconds past its TTL a manifest keeps serving while the Control Tower fails"),
    ] = 3600.0
    manifest_negative_ttl: Annotated[
        Seconds, MANIFESTS("seconds an unknown project (or a failed first fetch) is remembered")
    ] = 5.0
    unknown_project_rate: Annotated[
        Annotated[float, msgspec.Meta(gt=0)],
        MANIFESTS("Control Tower lookups a second for projects not cached (a worker)", "RATE"),
    ] = 20.0
    manifest_env_allow: Annotated[
        tuple[str, ...],
        MANIFESTS(
            "variables ${NAME} placeholders may read besides FD2_MANIFEST_*: names, or "
            "prefixes ending in *",
            "NAME,...",
        ),
    ] = ()
    module_packages: Annotated[
        tuple[str, ...],
        MANIFESTS("extra packages a manifest's runtime.implementation may name", "PACKAGE,..."),
    ] = ()

    # --- secrets and Vault (fd2's own Vault: for projects without a `vault` module)
    secrets_file: Annotated[
        str | None, SECRETS("JSON file that config: secret references read", "FILE")
    ] = None
    vault_addr: Annotated[
        str | None,
        SECRETS("Vault base URL; unset: vault: references need the project's vault module", "URL"),
    ] = None
    vault_auth: Annotated[Literal["token", "approle"], SECRETS("Vault auth method")] = "token"
    vault_token_ref: Annotated[Ref, SECRETS("secret reference of the Vault token", "REF")] = None
    vault_role_id_ref: Annotated[Ref, SECRETS("secret reference of the AppRole role_id", "REF")] = (
        None
    )
    vault_secret_id_ref: Annotated[
        Ref, SECRETS("secret reference of the AppRole secret_id", "REF")
    ] = None
    vault_approle_mount: Annotated[str, SECRETS("mount of the AppRole auth method", "MOUNT")] = (
        "approle"
    )
    vault_namespace: Annotated[
        str | None, SECRETS("Vault namespace (X-Vault-Namespace)", "NAMESPACE")
    ] = None
    vault_verify: Annotated[bool, SECRETS("verify Vault's TLS certificate")] = True
    vault_ca_bundle: Annotated[
        str | None, SECRETS("CA bundle for Vault's TLS certificate", "FILE")
    ] = None
    vault_client_cert: Annotated[
        str | None, SECRETS("client certificate for Vault (mutual TLS)", "FILE")
    ] = None
    vault_client_key: Annotated[
        str | None, SECRETS("client key for Vault (mutual TLS)", "FILE")
    ] = None
    vault_timeout: Annotated[Seconds, SECRETS("seconds a Vault call may take")] = 5.0
    vault_secret_ttl: Annotated[
        Seconds, SECRETS("seconds a Vault secret is used before it is reread in the background")
    ] = 300.0

    # --- auth and limits
    default_auth: Annotated[
        Literal["api_key", "none"],
        AUTH(
            "auth of modules whose manifest names none: a project API key, or none: served "
            "open (docs/security.md)"
        ),
    ] = "api_key"
    api_key_pepper_ref: Annotated[
        Ref, AUTH("secret reference of the HMAC key API-key hashes are made with", "REF")
    ] = None
    admin_token_ref: Annotated[
        Ref, AUTH("secret reference of the /admin bearer token (/admin is off without)", "REF")
    ] = None

    # --- Redis
    redis_url: Annotated[
        str | None,
        REDIS("Redis URL: manifest copies and change notices, rate limits, API keys", "URL"),
    ] = None
    redis_timeout: Annotated[
        Seconds, REDIS("seconds a rate-limit or API-key call waits on Redis before giving up")
    ] = 0.05
    limits_on_redis_failure: Annotated[
        Literal["open", "closed"],
        REDIS("while Redis is down: open (per-process limits) or closed (503)"),
    ] = "open"

    # --- upstream
    upstream_max_connections: Annotated[
        Count, UPSTREAM("upstream connections per worker (idle ones kept alive)")
    ] = 1024
    connect_timeout: Annotated[
        Seconds, UPSTREAM("seconds to connect upstream (manifests may override the timeouts)")
    ] = 5.0
    read_timeout: Annotated[Seconds, UPSTREAM("seconds between bytes read from upstream")] = 120.0
    total_timeout: Annotated[Seconds, UPSTREAM("seconds a whole upstream call may take")] = 600.0

    # --- jobs and webhooks
    jobs_workers: Annotated[
        Capacity, JOBS("jobs one worker process runs at once (0: this replica runs none)")
    ] = 4
    jobs_project_concurrency: Annotated[
        Count, JOBS("jobs of one project running at once, across all replicas")
    ] = 8
    jobs_visibility_timeout: Annotated[
        Seconds, JOBS("seconds after which a job held by a silent worker is claimed again")
    ] = 60.0
    jobs_max_attempts: Annotated[
        Count, JOBS("times a job is started before it fails as interrupted")
    ] = 3
    jobs_ttl: Annotated[
        Seconds, JOBS("seconds a job may wait and run before it expires (its expires_at)")
    ] = 86400.0
    jobs_retention: Annotated[
        Seconds, JOBS("seconds a job, file or batch is kept after it expires")
    ] = 604800.0
    batch_max_requests: Annotated[Count, JOBS("requests one batch input file may hold")] = 50000
    webhook_max_attempts: Annotated[
        Count, JOBS("webhook deliveries tried before the webhook is dead-lettered")
    ] = 8
    webhook_backoff: Annotated[
        Seconds, JOBS("seconds before the first webhook retry (doubling, with jitter, to 1 h)")
    ] = 5.0
    webhook_timeout: Annotated[Seconds, JOBS("seconds one webhook delivery may take")] = 10.0
    webhook_allow_private: Annotated[
        str | None,
        JOBS(
            "comma-separated CIDRs webhooks may reach although private, loopback or link-local "
            "(e.g. 10.0.0.0/8); `all`: every address but cloud metadata ones",
            "CIDRS",
        ),
    ] = None
    webhook_allow_http: Annotated[bool, JOBS("allow http:// webhook URLs (https only without)")] = (
        False
    )

    # --- logging
    log_level: Annotated[Literal["debug", "info", "warning", "error"], LOGGING("log level")] = (
        "info"
    )
    access_log: Annotated[
        bool, LOGGING("one line per request: id, method, path, status, duration")
    ] = False
    log_format: Annotated[
        Literal["text", "json"],
        LOGGING("log lines as text, or as JSON objects with the request id and trace id"),
    ] = "text"
    otel_endpoint: Annotated[
        str | None,
        LOGGING(
            "OpenTelemetry: send traces to this OTLP/HTTP endpoint (e.g. "
            "http://collector:4318/v1/traces); needs `pip install 'fd2[otel]'`",
            "URL",
        ),
    ] = None
    otel_service_name: Annotated[
        str, LOGGING("OpenTelemetry: the service.name of fd2's spans", "NAME")
    ] = "fd2"
    audit_file: Annotated[
        str | None,
        LOGGING("JSON Lines file the audit records of modules with `audit` go to", "PATH"),
    ] = None
    audit_file_max_bytes: Annotated[
        Count, LOGGING("size at which the audit file is rotated (PATH.1, PATH.2, ...)")
    ] = 104857600
    audit_file_keep: Annotated[Count, LOGGING("rotated audit files kept")] = 5
    audit_stream: Annotated[
        str | None,
        LOGGING("Redis Stream the audit records go to (needs --redis-url)", "KEY"),
    ] = None
    audit_stream_maxlen: Annotated[
        Count, LOGGING("approximate length the audit stream is trimmed to (XADD MAXLEN ~)")
    ] = 100000

    def __post_init__(self) -> None:
        # msgspec checks types and bounds when it decodes; a Settings built in Python gets the
        # same checks from the same table.
        check_fields(self)


def settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `FD2_SETTINGS_JSON` (set by `fd2 serve`), else from `FD2_*` variables, read
    by the command line's parser (a bad value raises `SettingsError` naming its variable)."""
    environ = os.environ if environ is None else environ
    packed = environ.get(SETTINGS_ENV)
    if packed:
        return msgspec.json.decode(packed, type=Settings)
    settings: Settings = from_sources(Settings, {}, environ)
    return settings
