"""What `GET /admin/routes` shows: sources, projects, modules, environments, manifest versions,
age, staleness, last errors, module health, background tasks that had to be restarted and what
each module instance says about itself (`details`, e.g. an APISIX route's unimplemented
plugins). Built from control-plane state; never a secret value. Each manifest source describes
itself (`fd2.control.sources.protocol`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fd2.control.module_health import ModuleHealth
from fd2.control.route_table import Route, RouteGroup
from fd2.control.runtime import Runtime
from fd2.module import Module

_log = logging.getLogger("fd2.admin")


def routes_view(runtime: Runtime) -> dict[str, Any]:
    builder = runtime.builder
    table = builder.table
    by_project: dict[str, list[dict[str, Any]]] = {}
    for (project, module), group in sorted(table.groups.items()):
        by_project.setdefault(project, []).append(
            _module_view(project, module, group, runtime.health)
        )
    projects = []
    for project in sorted(table.projects):
        source = runtime.source_of(project)
        entry: dict[str, Any] = {
            "project": project,
            "source": source.kind if source is not None else None,
            "manifest": {"version": builder.version_of(project), "digest": builder.digest(project)},
            "modules": by_project.get(project, []),
        }
        if source is not None:
            entry.update(source.describe_project(project))
        projects.append(entry)
    sources: dict[str, Any] = {source.view_key: source.describe() for source in runtime.sources}
    sources["redis"] = None if runtime.share is None else {"connected": runtime.share.up}
    return {
        "route_table_version": table.version,
        "routes": len(table),
        "retired_instances_open": builder.retired_open(),
        "rebuilds": {"count": builder.rebuilds, "last_seconds": builder.last_rebuild_seconds},
        "sources": sources,
        "projects": projects,
        "failing_projects": [
            failure for source in runtime.sources for failure in source.failing(table.projects)
        ],
        "background_tasks": [
            {"task": task.name, "restarts": task.restarts, "last_error": task.last_error}
            for task in runtime.tasks.tasks
            if task.restarts
        ],
    }


def _module_view(
    project: str, module: str, group: RouteGroup, health: ModuleHealth
) -> dict[str, Any]:
    environments = []
    for name, route in sorted(group.by_environment.items()):
        problem = route.unavailable
        entry: dict[str, Any] = {
            "environment": name,
            "status": "serving" if problem is None else "unavailable",
            "error": None if problem is None else problem.message,
            "auth": _auth_view(route),
        }
        if route.loaded is not None:
            answer = health.of(project, module, name)
            if answer is not None:
                entry["health"] = {"ok": answer.ok, "detail": answer.detail}
            details = _details(route.loaded.instance)
            if details:
                entry["details"] = details
        environments.append(entry)
    return {
        "module": module,
        "origin": group.origin,
        "default_environment": group.default_environment,
        "environments": environments,
    }


def _auth_view(route: Route) -> dict[str, str] | None:
    if route.unavailable is not None:
        return None
    if route.steps is None:
        return {"mode": "none", "why": "the gateway runs without auth"}
    policy = route.steps.policy
    return {"mode": policy.mode, "why": policy.source}


def _details(instance: Module) -> Mapping[str, Any]:
    """What the module says about itself (e.g. the APISIX route it applies and the plugins it
    does not); a module failing to say it must not break the whole view."""
    try:
        return instance.describe()
    except Exception as exc:
        _log.warning("describing %s failed: %s", type(instance).__name__, type(exc).__name__)
        return {"error": "the module could not describe itself"}
