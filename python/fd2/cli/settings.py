"""The settings table as command-line flags: grouped by concern, each with its variable and
default in the help, booleans as `--x` / `--no-x` switches, values parsed by the table itself."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Final

from fd2.config import GROUPS, Settings
from fd2.settings_table import FieldSpec, field_specs, from_sources, shown_default

HELP_POSITION = 36


def formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter with room for the longer flags beside their help."""
    return argparse.HelpFormatter(prog, max_help_position=HELP_POSITION)


def add_settings(
    parser: argparse.ArgumentParser,
    names: Collection[str] | None = None,
    aliases: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Adds a flag per setting (`names`: only those), in the groups of `fd2.config.GROUPS`."""
    specs = [spec for spec in field_specs(Settings) if names is None or spec.name in names]
    for group in GROUPS:
        members = [spec for spec in specs if spec.group == group.title]
        if not members:
            continue
        arguments = parser.add_argument_group(group.title, group.description)
        for spec in members:
            flags = (spec.flag, *(aliases or {}).get(spec.name, ()))
            if spec.kind == "bool":
                arguments.add_argument(
                    *flags,
                    dest=spec.name,
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=_help(spec),
                )
            else:
                arguments.add_argument(
                    *flags, dest=spec.name, default=None, metavar=_metavar(spec), help=_help(spec)
                )


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str], names: Collection[str] | None = None
) -> Settings:
    """Flags win over `FD2_*` variables, which win over the defaults. `names`: the settings this
    command reads (the others keep their defaults, whatever the environment says of them).

    Raises `fd2.settings_table.SettingsError` naming the flag or variable of a bad value."""
    flags: dict[str, str | bool] = {}
    for spec in field_specs(Settings):
        value = getattr(args, spec.name, None)
        if value is not None:
            flags[spec.name] = value
    settings: Settings = from_sources(Settings, flags, environ, names)
    return settings


def switch_hint(argv: Sequence[str], extras: Sequence[str]) -> str:
    """Why a `true`/`false` after a switch was not taken (switches take no value)."""
    for before, word in itertools.pairwise(argv):
        if word in extras and word.lower() in _BOOL_WORDS:
            spec = _SWITCHES.get(before.removeprefix("--no-").removeprefix("--"))
            if spec is not None:
                return (
                    f" ({spec.flag} is a switch: write {spec.flag} or --no-{spec.flag[2:]}; "
                    f"{spec.variable} takes true or false)"
                )
    return ""


_BOOL_WORDS: Final = frozenset({"true", "false", "1", "0", "yes", "no", "on", "off"})
_SWITCHES: Final = {spec.flag[2:]: spec for spec in field_specs(Settings) if spec.kind == "bool"}


def _metavar(spec: FieldSpec) -> str:
    if spec.kind == "choice":
        return "{" + ",".join(spec.choices) + "}"
    return spec.metavar


def _help(spec: FieldSpec) -> str:
    variable = f"{spec.variable}=true|false" if spec.kind == "bool" else spec.variable
    default = shown_default(spec)
    where = f"{variable}; default {default}" if default is not None else variable
    # argparse expands %-formats in help texts: a literal % must be doubled.
    return f"{spec.help} [{where}]".replace("%", "%%")
