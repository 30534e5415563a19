"""What `fd2 check` and `fd2 routes` print for people: problems by project, then routes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fd2.cli.check import Report
from fd2.cli.check_command import OFFLINE_NOTE
from fd2.cli.check_problems import Problem
from fd2.cli.route_preview import RouteRow
from fd2.control.manifests.models import JWT_CONFIG_MODULE_TYPE


def check_text(report: Report) -> str:
    lines = [
        f"fd2 check {report.source} ({report.kind}): {report.manifests} manifest(s), "
        f"{len(report.routes)} route(s)"
    ]
    project: str | None = ""
    for problem in report.problems:
        if problem.severity == "note" and problem.project is None:
            continue  # general notes go last
        if problem.project != project:
            project = problem.project
            lines.append("")
            lines.append(project or "manifests")
        lines.append(f"  {problem.severity:<8} {_where(problem)}{problem.message}")
    auth = _auth_lines(report.routes)
    if auth:
        lines += ["", "auth by route", *auth]
    general = [p.message for p in report.problems if p.severity == "note" and p.project is None]
    if general:
        lines += ["", "notes", *(f"  {note}" for note in general)]
    lines += ["", f"{report.errors} error(s), {report.warnings} warning(s)"]
    return "\n".join(lines)


def routes_text(source: str, routes: Sequence[RouteRow], problems: Iterable[Problem]) -> str:
    lines = [f"fd2 routes {source}: {len(routes)} route(s); {OFFLINE_NOTE}"]
    lines += [f"  {p.severity:<8} {_where(p)}{p.message}" for p in problems]
    for row in routes:
        lines.append("")
        state = row.status if row.problem is None else f"{row.status}: {row.problem}"
        lines.append(f"{row.label}  {row.module_type}  {state}  ({row.origin})")
        if row.auth is not None:
            lines.append(f"  auth       {_mode(row)}: {row.auth_reason}")
        elif row.auth_reason:
            lines.append(f"  auth       {row.auth_reason}")
        for index, endpoint in enumerate(row.endpoints):
            lines.append(f"  {'endpoints' if index == 0 else '':<10} {endpoint}")
        for index, limit in enumerate(row.limits):
            lines.append(f"  {'limits' if index == 0 else '':<10} {limit}")
        lines += [f"  note       {note}" for note in row.notes]
    return "\n".join(lines)


def _where(problem: Problem) -> str:
    place = problem.module or ""
    if problem.environments:
        place += f" [{', '.join(problem.environments)}]"
    if not place and problem.origin:
        place = problem.origin
    return f"{place}: " if place else ""


def _mode(row: RouteRow) -> str:
    return (
        "none (OPEN)"
        if row.auth == "none" and row.module_type != JWT_CONFIG_MODULE_TYPE
        else str(row.auth)
    )


def _auth_lines(routes: Iterable[RouteRow]) -> list[str]:
    """One line per module and decision, with the environments it holds in."""
    merged: dict[tuple[str, str, str], list[str]] = {}
    for row in routes:
        if row.auth is not None:
            key = (f"{row.project}/{row.module}", _mode(row), str(row.auth_reason))
            merged.setdefault(key, []).append(row.environment)
    if not merged:
        return []
    width = max(len(name) for name, _, _ in merged)
    return [
        f"  {name:<{width}}  {mode:<11} {reason} [{', '.join(environments)}]"
        for (name, mode, reason), environments in merged.items()
    ]
