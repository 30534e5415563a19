"""`fd2 keys new`: mint an API key, print it once, with the record (hash only) to store."""

from __future__ import annotations

import argparse
import os
import sys

import orjson

from fd2.auth.api_keys import KeyHasher, new_key
from fd2.cli.settings import add_settings, formatter, settings_from_args
from fd2.control.secrets import SecretResolver
from fd2.serving.errors import SecretError
from fd2.settings_table import SettingsError

_PEPPER = ("api_key_pepper_ref",)
"""The one gateway setting `keys new` reads (flag, `FD2_API_KEY_PEPPER_REF`), as serve does."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="API keys: mint one and print the hash to store")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    new = actions.add_parser(
        "new", help="a new key for a project (printed once)", formatter_class=formatter
    )
    new.add_argument("--project", required=True)
    new.add_argument("--id", required=True, help="a name for the key (shown in logs, never it)")
    new.add_argument("--modules", help="comma-separated modules it may call (default: all)")
    new.add_argument("--environments", help="comma-separated environments (default: all)")
    new.add_argument("--models", help="comma-separated models (default: all)")
    new.add_argument("--requests-per-minute", type=int)
    new.add_argument("--tokens-per-minute", type=int)
    add_settings(new, _PEPPER, aliases={"api_key_pepper_ref": ("--pepper-ref",)})
    new.set_defaults(run=run, command_parser=new)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        pepper_ref = settings_from_args(args, os.environ, _PEPPER).api_key_pepper_ref
    except SettingsError as exc:
        parser.error(str(exc))
    try:
        pepper = SecretResolver().resolve(pepper_ref).reveal() if pepper_ref else ""
    except SecretError as exc:
        sys.exit(f"fd2 keys new: {exc.message}")
    key = new_key()
    record: dict[str, object] = {
        "id": args.id,
        "project": args.project,
        "hash": KeyHasher(pepper.encode()).digest(key).hex(),
    }
    for field in ("modules", "environments", "models"):
        value = getattr(args, field)
        if value:
            record[field] = [part.strip() for part in value.split(",") if part.strip()]
    limits = {
        name: getattr(args, name)
        for name in ("requests_per_minute", "tokens_per_minute")
        if getattr(args, name)
    }
    if limits:
        record["limits"] = limits
    print(f"key (give it to its holder; it is not stored anywhere): {key}")
    print("record for the manifest's api_keys (or Redis fd2:apikey:<hash>):")
    print(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
    return 0
