"""`fd2 check` and `fd2 routes`: a manifest set (a directory or a Control Tower) checked offline,
or its route table printed; both read the same settings (flags and `FD2_*` variables) as serve."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from fd2.cli.settings import add_settings, formatter, settings_from_args
from fd2.config import Settings
from fd2.control.environments import canonical_environment
from fd2.settings_table import SettingsError

if TYPE_CHECKING:
    from fd2.control.manifest_set import ManifestSet

# The checks import the whole control plane: only when a command runs (`fd2 --version`, `fd2
# serve` start without them).

_FLAGS: Final = (
    "default_env",
    "default_auth",
    "manifest_env_allow",
    "module_packages",
    "control_tower_secret_ref",
    "control_tower_ca",
    "control_tower_connect_timeout",
    "control_tower_read_timeout",
    "control_tower_retries",
    "secrets_file",
)
_SETTINGS: Final = (*_FLAGS, "manifests", "control_tower")
"""Read from flags and variables; `manifests` and `control_tower` (variables only) name the
sources checked when none is given, so `fd2 check` in a gateway's environment checks what it
serves."""
OFFLINE_NOTE: Final = (
    "built offline: secret references were checked for their form, never read; Vault and "
    "JWKS URLs were not contacted"
)
EXIT_PROBLEMS: Final = 1
EXIT_UNREADABLE: Final = 2

_SOURCES_HELP = (
    "a directory of manifest files (or one file), or a Control Tower base URL; default: "
    "FD2_MANIFESTS and FD2_CONTROL_TOWER, as fd2 serve would read them"
)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    checker = commands.add_parser(
        "check",
        help="check manifests offline (for CI): exit 1 on errors",
        usage="%(prog)s [options] [DIR|URL ...]",
        description="Compile manifests as the gateway would, without reading a secret or "
        "calling a service, and report what would fail or be served open. Exit status: 0 "
        "fine, 1 errors (or warnings, with --strict), 2 a source that cannot be read.",
        formatter_class=formatter,
    )
    _common(checker)
    checker.add_argument("--strict", action="store_true", help="warnings fail the check too")
    checker.add_argument(
        "--deny-open",
        action="store_true",
        help="a route served without authentication is an error, not a warning",
    )
    checker.add_argument(
        "--check-env",
        action="store_true",
        help="env: references and ${NAME} placeholders must name variables set here (their "
        "values are not read)",
    )
    checker.set_defaults(run=run_check, command_parser=checker)
    router = commands.add_parser(
        "routes",
        help="print the route table manifests compile to",
        usage="%(prog)s [options] [DIR|URL ...]",
        description="The routes a manifest set compiles to: project, module, environment, "
        f"module type, auth mode and why, endpoints, limits. {OFFLINE_NOTE[0].upper()}"
        f"{OFFLINE_NOTE[1:]}.",
        formatter_class=formatter,
    )
    _common(router)
    router.add_argument(
        "--environment",
        action="append",
        default=[],
        metavar="ENV",
        help="only this environment (repeatable)",
    )
    router.set_defaults(run=run_routes, command_parser=router)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", metavar="DIR|URL", help=_SOURCES_HELP)
    parser.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="PROJECT",
        help="only this project (repeatable); a Control Tower is asked for it alone",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_settings(parser, _FLAGS)


def run_check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from fd2.cli.check import CheckOptions, check
    from fd2.cli.check_output import check_text

    settings, sets, status = _read(args, parser)
    options = CheckOptions(check_env=args.check_env, deny_open=args.deny_open)
    reports = [check(manifest_set, settings, options) for manifest_set in sets]
    errors = sum(report.errors for report in reports)
    warnings = sum(report.warnings for report in reports)
    failed = errors > 0 or (args.strict and warnings > 0)
    if args.json:
        _print_json(
            {
                "ok": not failed and status == 0,
                "errors": errors,
                "warnings": warnings,
                "sources": reports,
            }
        )
    elif reports:
        print("\n\n".join(check_text(report) for report in reports))
    if status:
        return status
    return EXIT_PROBLEMS if failed else 0


def run_routes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from fd2.cli.check_output import routes_text
    from fd2.cli.check_problems import Problem
    from fd2.cli.route_preview import preview

    settings, sets, status = _read(args, parser)
    outputs = []
    for manifest_set in sets:
        good = [(r.origin, r.manifest) for r in manifest_set.files if r.manifest is not None]
        problems = [
            Problem(severity="error", message=str(r.error), origin=r.origin)
            for r in manifest_set.files
            if r.manifest is None
        ]
        if problems:
            status = status or EXIT_PROBLEMS
        rows = preview(good, settings, check_env=False).routes if good else []
        wanted = set(args.environment)
        rows = [row for row in rows if not wanted or _environment_matches(row.environment, wanted)]
        outputs.append((manifest_set, rows, problems))
    if args.json:
        _print_json(
            {
                "note": OFFLINE_NOTE,
                "sources": [
                    {"source": s.source, "kind": s.kind, "problems": p, "routes": rows}
                    for s, rows, p in outputs
                ],
            }
        )
    elif outputs:
        print("\n\n".join(routes_text(s.source, rows, p) for s, rows, p in outputs))
    return status


def _read(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[Settings, list[ManifestSet], int]:
    from fd2.control.manifest_set import SourceError, is_url, read_control_tower, read_directory

    try:
        settings = settings_from_args(args, os.environ, _SETTINGS)
    except SettingsError as exc:
        parser.error(str(exc))
    sources: Sequence[str] = args.sources or [
        source for source in (settings.manifests, settings.control_tower) if source
    ]
    if not sources:
        parser.error(
            "give a manifest directory or a Control Tower URL (or set FD2_MANIFESTS "
            "or FD2_CONTROL_TOWER)"
        )
    sets = []
    status = 0
    for source in sources:
        try:
            if is_url(source):
                sets.append(read_control_tower(source, settings, args.project))
            else:
                sets.append(read_directory(Path(source), args.project))
        except SourceError as exc:
            print(f"fd2 {args.command}: {exc}", file=sys.stderr)
            status = EXIT_UNREADABLE
    return settings, sets, status


def _environment_matches(environment: str, wanted: set[str]) -> bool:
    return environment in {canonical_environment(name) for name in wanted}


def _print_json(value: object) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")
