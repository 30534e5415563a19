"""`fd2 serve`: parse flags (each with an FD2_* variable), then run the ASGI app under Granian."""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from fd2.auth import keys_cli
from fd2.config import SETTINGS_ENV, TUPLE_FIELDS, Settings, env_name
from fd2.version import VersionAction

_HELP = {
    "host": "address to listen on",
    "port": "port to listen on",
    "workers": "worker processes (one event loop each)",
    "manifests": "directory of manifest files: the embedded default",
    "control_tower": "Control Tower base URL (GET /manifests/{project_id})",
    "control_tower_secret_ref": "secret reference for the X-DSPAI-Client-Secret header",
    "default_env": "environment when neither X-Environment nor the module names one",
    "base_domain": "enable {project}-{module}.<base domain> routing",
    "max_body_bytes": "largest request body accepted (413 above)",
    "body_timeout": "seconds a request body may take to arrive (408 after)",
    "access_log": "log one line per request (true/false)",
    "shutdown_timeout": "seconds in-flight requests get to finish at shutdown",
    "manifest_ttl": "seconds a Control Tower manifest is used before it is refetched",
    "manifest_poll": "seconds between checks of the manifest directory for changes",
    "module_packages": "comma-separated extra packages runtime.implementation may name",
    "secrets_file": "JSON file read by config: secret references",
    "upstream_max_connections": "upstream connection pool size per worker",
    "connect_timeout": "default upstream connect timeout (s)",
    "read_timeout": "default upstream read timeout (s)",
    "total_timeout": "default limit for a whole upstream call (s)",
    "log_level": "debug, info, warning or error",
    # Control Tower client, manifest cache, operator view, Redis sharing (issue 5)
    "control_tower_ca": "PEM CA bundle to verify the Control Tower's TLS certificate",
    "control_tower_connect_timeout": "seconds to connect to the Control Tower",
    "control_tower_read_timeout": "seconds to wait for a Control Tower answer",
    "control_tower_retries": "extra attempts for a failed Control Tower GET",
    "manifest_max_stale": "seconds a manifest may serve past its TTL while the Control Tower fails",
    "manifest_negative_ttl": "seconds an unknown project is remembered before asking again",
    "unknown_project_rate": "Control Tower lookups per second for projects not cached",
    "admin_token_ref": "secret reference of the /admin bearer token (admin is off without it)",
    "redis_url": "Redis URL shared by replicas: manifests, change notices, rate limits, API keys",
    "limits_on_redis_failure": "open (per-process limits) or closed (503) while Redis is down",
    "api_key_pepper_ref": "secret reference of the HMAC key for API-key hashes",
    "default_auth": "auth of modules whose manifest names none: api_key, or none (served open)",
    # Vault (for `vault:` references of projects without a `vault` module)
    "vault_addr": "Vault base URL (https://vault:8200)",
    "vault_auth": "Vault auth method: token or approle",
    "vault_token_ref": "secret reference of the Vault token (token auth)",
    "vault_role_id_ref": "secret reference of the AppRole role_id",
    "vault_secret_id_ref": "secret reference of the AppRole secret_id",
    "vault_approle_mount": "mount point of the AppRole auth method",
    "vault_namespace": "Vault namespace (X-Vault-Namespace)",
    "vault_verify": "verify Vault's TLS certificate (true/false)",
    "vault_ca_bundle": "CA bundle file for Vault's TLS certificate",
    "vault_client_cert": "client certificate file for Vault (mutual TLS)",
    "vault_client_key": "client key file for Vault (mutual TLS)",
    "vault_timeout": "seconds a Vault call may take",
    "vault_secret_ttl": "seconds a Vault secret is used before it is reread in the background",
    # Hardening (issue 19)
    "http": "1 (HTTP/1.1 only) or auto (HTTP/1.1 and cleartext HTTP/2 on the same port)",
    "header_timeout": "seconds to send a request head; also the idle keep-alive timeout",
    "max_connections": "open client connections per worker (no more are accepted past it)",
    "max_header_bytes": "largest HTTP/2 header list in bytes (431 above)",
    "max_headers": "most header fields in a request (431 above)",
    "redis_timeout": "seconds a rate-limit or API-key call may wait on Redis",
    "health_port": "a second port answering only GET /healthz, outside the connection cap",
    "manifest_env_allow": "comma-separated variables (or PREFIX_*) ${NAME} placeholders may read "
    "besides FD2_MANIFEST_*",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fd2", description="fd2: the AI platform's front door")
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve requests (Granian, raw ASGI, uvloop)")
    for field in msgspec.structs.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        serve.add_argument(
            flag,
            dest=field.name,
            default=None,
            metavar=field.name.upper(),
            help=f"{_HELP.get(field.name, '')} [env {env_name(field.name)}; default {shown}]",
        )
    keys_cli.add_parser(commands)
    return parser


def settings_from(args: argparse.Namespace, environ: dict[str, str]) -> Settings:
    """Flags win over FD2_* variables, which win over the defaults."""
    values: dict[str, object] = {}
    for field in msgspec.structs.fields(Settings):
        raw = getattr(args, field.name)
        if raw is None:
            raw = environ.get(env_name(field.name))
        if raw is None:
            continue
        values[field.name] = (
            tuple(part.strip() for part in raw.split(",") if part.strip())
            if field.name in TUPLE_FIELDS
            else raw
        )
    return msgspec.convert(values, Settings, strict=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "keys":
        keys_cli.run(args)
        return
    try:
        settings = settings_from(args, dict(os.environ))
    except msgspec.ValidationError as exc:
        parser.error(str(exc))
    if settings.manifests and not Path(settings.manifests).is_dir():
        parser.error(f"--manifests {settings.manifests}: not a directory")
    if not settings.manifests and not settings.control_tower:
        parser.error("give --manifests DIR and/or --control-tower URL (or FD2_MANIFESTS)")
    serve(settings)


def serve(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings, HTTP2Settings
    from granian.log import LogLevels

    # Workers are separate processes: they read the parsed settings back from the environment.
    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    # Granian reports every write to a vanished client at info level: keep its log to warnings.
    granian_level = LogLevels.debug if settings.log_level == "debug" else LogLevels.warning
    Granian(
        target="fd2.app:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        # HTTP/1.1 only unless asked: Granian's protocol detection (HTTP/1.1 or HTTP/2 on one
        # port) waits for a connection's first bytes with no time limit, so with `auto` a socket
        # that sends nothing is never timed out (docs/operations.md).
        http=HTTPModes.http1 if settings.http == "1" else HTTPModes.auto,
        http1_settings=HTTP1Settings(header_read_timeout=round(settings.header_timeout * 1000)),
        http2_settings=HTTP2Settings(
            max_headers_size=settings.max_header_bytes,
            max_concurrent_streams=_HTTP2_MAX_STREAMS,
            # Pings find peers that vanished without closing; an idle live peer answers them.
            keep_alive_interval=round(settings.header_timeout * 1000),
            keep_alive_timeout=20,
        ),
        websockets=False,
        backlog=_BACKLOG,
        # Granian's per-worker connection cap: past it the worker stops accepting until a
        # connection ends. Held far above what a worker serves, and bounded by the fd limit.
        backpressure=connection_cap(settings),
        log_level=granian_level,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=math.ceil(settings.shutdown_timeout) + 1,
    ).serve()


_BACKLOG = 2048
_HTTP2_MAX_STREAMS = 100
_FDS_RESERVED = 256
"""File descriptors a worker keeps for itself: manifests, Redis, Vault, logs, the loop."""


def connection_cap(settings: Settings) -> int:
    """`--max-connections`, lowered to what the worker's file-descriptor limit can hold.

    Raises the soft limit to the hard one first (workers inherit it): every client and upstream
    connection is a descriptor, and a default soft limit of 1024 would cap a worker long before
    `--max-connections`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    room = soft - settings.upstream_max_connections - _FDS_RESERVED
    if soft != resource.RLIM_INFINITY and room < settings.max_connections:
        cap = max(room, 64)
        print(
            f"fd2: --max-connections {settings.max_connections} exceeds what the file-descriptor "
            f"limit ({soft}) holds next to {settings.upstream_max_connections} upstream "
            f"connections; using {cap} (raise `ulimit -n`)",
            file=sys.stderr,
        )
        return cap
    return settings.max_connections


if __name__ == "__main__":
    main(sys.argv[1:])
