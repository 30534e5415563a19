"""Environment names: `dev`/`development`, `stg`/`staging`, `prod`/`production` are one each."""

from __future__ import annotations

import re

_ALIASES = {
    "dev": "development",
    "development": "development",
    "stg": "staging",
    "stage": "staging",
    "staging": "staging",
    "prod": "production",
    "production": "production",
}
_ENV_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def canonical_environment(name: str) -> str:
    """The canonical spelling of an environment name (lower case, long form for known aliases)."""
    lowered = name.strip().lower()
    return _ALIASES.get(lowered, lowered)


def is_valid_environment_name(name: str) -> bool:
    return _ENV_NAME.match(name) is not None
