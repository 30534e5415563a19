"""The `fd2` command: `serve` (flags and FD2_* variables, then the ASGI app under Granian), `check`,
`routes`, `keys`."""

from __future__ import annotations

import argparse
import atexit
import math
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec

from fd2.auth import keys_cli
from fd2.cli import check_command as cli_check
from fd2.cli.settings import add_settings, formatter, settings_from_args, switch_hint
from fd2.config import SETTINGS_ENV, Settings
from fd2.serving.cpu_scheduling import apply_cpu_scheduling
from fd2.settings_table import SettingsError
from fd2.version import VersionAction

# prometheus-client reads it when first imported: set before any worker imports it (not imported
# here from fd2.serving.request_metrics for that reason).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fd2",
        description="fd2: the AI platform's front door",
        epilog="`fd2 COMMAND --help` lists a command's options.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="serve requests (Granian, raw ASGI, uvloop)",
        usage="%(prog)s [options]",
        description="Serve requests. Every flag has an FD2_* variable, shown in brackets with "
        "the default; a flag wins over its variable, which wins over the default. Switches "
        "(--x / --no-x) read true/false, 1/0, yes/no or on/off from their variable.",
        formatter_class=formatter,
    )
    add_settings(serve_parser)
    serve_parser.set_defaults(run=_run_serve, command_parser=serve_parser)
    cli_check.add_parsers(commands)
    keys_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        hint = switch_hint(sys.argv[1:] if argv is None else argv, extras)
        args.command_parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
    # Each command runs with its own parser, so that an error names `fd2 serve` (or check, ...).
    status = args.run(args, args.command_parser)
    if status:
        sys.exit(status)


def _run_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        settings = settings_from_args(args, os.environ)
    except SettingsError as exc:
        parser.error(str(exc))
    if settings.manifests and not Path(settings.manifests).is_dir():
        parser.error(f"--manifests {settings.manifests}: not a directory")
    if not settings.manifests and not settings.control_tower:
        parser.error("give --manifests DIR and/or --control-tower URL (or FD2_MANIFESTS)")
    serve(settings)
    return 0


def serve(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings, HTTP2Settings
    from granian.log import LogLevels

    _metrics_directory()
    # Before Granian starts: its workers and all their threads inherit the policy.
    refused = apply_cpu_scheduling(settings.cpu_scheduling)
    if refused is not None:
        print(f"fd2: {refused}; serving under the policy it was started with", file=sys.stderr)
    # Workers are separate processes: they read the parsed settings back from the environment.
    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    # Granian reports every write to a vanished client at info level: keep its log to warnings.
    granian_level = LogLevels.debug if settings.log_level == "debug" else LogLevels.warning
    Granian(
        target="fd2.serving.app:create_app",
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


def _metrics_directory() -> None:
    """The directory the workers share their request metrics through (prometheus-client's
    multi-process mode, `fd2.serving.request_metrics`): fresh for each server start, so no figure
    of an
    earlier run is counted again. One an operator set is emptied of such files instead."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return
    directory = Path(tempfile.mkdtemp(prefix="fd2-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
