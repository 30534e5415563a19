"""What `fd2 check` reports: problems with a severity and where they hold."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

import msgspec

Severity = Literal["error", "warning", "note"]


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    severity: Severity
    message: str
    origin: str | None = None
    project: str | None = None
    module: str | None = None
    environments: list[str] = msgspec.field(default_factory=list)
    """Where the same problem holds (empty: the whole module, project or file)."""


_ORDER: Final = {"error": 0, "warning": 1, "note": 2}


def merged(problems: Iterable[Problem]) -> list[Problem]:
    """One entry per problem, with every environment it holds in."""
    by_key: dict[tuple[Any, ...], Problem] = {}
    for problem in problems:
        key = (problem.severity, problem.origin, problem.project, problem.module, problem.message)
        seen = by_key.get(key)
        if seen is None:
            by_key[key] = problem
        elif seen.environments and problem.environments:
            seen.environments += [e for e in problem.environments if e not in seen.environments]
        else:
            seen.environments = []
    return sorted(
        by_key.values(),
        key=lambda p: (p.project or "", p.module or "", _ORDER[p.severity], p.message),
    )
