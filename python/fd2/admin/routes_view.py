"""What `GET /admin/routes` shows: sources, projects, modules, environments, manifest versions,
age, staleness, last errors and what each module instance says about itself (`details`, e.g. an
APISIX route's unimplemented plugins). Built from control-plane state; never a secret value."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from fd2.module import Module
from fd2.route_table import Route, RouteGroup
from fd2.runtime import Runtime
from fd2.sources.manifest_cache import ControlTowerCache

_log = logging.getLogger("fd2.admin")


def routes_view(runtime: Runtime) -> dict[str, Any]:
    builder = runtime.builder
    table = builder.table
    cache = runtime.control_tower
    by_project: dict[str, list[dict[str, Any]]] = {}
    for (project, module), group in sorted(table.groups.items()):
        by_project.setdefault(project, []).append(_module_view(module, group))
    local = runtime.local.projects if runtime.local is not None else frozenset()
    projects = []
    for project in sorted(table.projects):
        entry: dict[str, Any] = {
            "project": project,
            "source": "directory" if project in local else "control-tower",
            "manifest": {"version": builder.version_of(project), "digest": builder.digest(project)},
            "modules": by_project.get(project, []),
        }
        if cache is not None and project not in local:
            entry.update(_cache_view(cache, project))
        projects.append(entry)
    return {
        "route_table_version": table.version,
        "routes": len(table),
        "retired_instances_open": builder.retired_open(),
        "rebuilds": {"count": builder.rebuilds, "last_seconds": builder.last_rebuild_seconds},
        "sources": _sources_view(runtime),
        "projects": projects,
        "failing_projects": _failing(cache, table.projects),
    }


def _module_view(module: str, group: RouteGroup) -> dict[str, Any]:
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
    policy = route.auth
    if policy is None:
        return {"mode": "none", "why": "the gateway runs without auth"}
    return {"mode": policy.mode, "why": policy.source}


def _details(instance: Module) -> Mapping[str, Any]:
    """What the module says about itself (e.g. the APISIX route it applies and the plugins it
    does not); a module failing to say it must not break the whole view."""
    try:
        return instance.describe()
    except Exception as exc:
        _log.warning("describing %s failed: %s", type(instance).__name__, type(exc).__name__)
        return {"error": "the module could not describe itself"}


def _cache_view(cache: ControlTowerCache, project: str) -> dict[str, Any]:
    state = cache.states.get(project)
    if state is None:
        return {}
    staleness = cache.staleness(state)
    return {
        "source": state.source,
        "age_s": round(cache.age(state), 3),
        "staleness_s": round(staleness, 3),
        "stale": staleness > 0,
        "etag": state.etag is not None,
        "changed_at": _iso(state.changed_at),
        "last_error": state.last_error,
        "last_error_at": _iso(state.last_error_at),
    }


def _failing(cache: ControlTowerCache | None, served: frozenset[str]) -> list[dict[str, Any]]:
    """Projects the Control Tower was asked for recently but that do not serve."""
    if cache is None:
        return []
    return [
        {"project": project, "error": state.failure.message if state.failure else state.last_error}
        for project, state in sorted(cache.states.items())
        if project not in served and (state.failure is not None or state.last_error)
    ][:100]


def _sources_view(runtime: Runtime) -> dict[str, Any]:
    settings = runtime.settings
    cache = runtime.control_tower
    return {
        "manifest_directory": None
        if runtime.local is None
        else {"path": settings.manifests, "usable": runtime.local.usable},
        "control_tower": None
        if cache is None
        else {
            "url": cache.client.base_url,
            "reachable": cache.reachable,
            "ttl_s": cache.ttl,
            "max_stale_s": cache.max_stale,
            "negative_ttl_s": settings.manifest_negative_ttl,
            "unknown_project_rate": settings.unknown_project_rate,
        },
        "redis": None if runtime.redis is None else {"connected": runtime.redis.up},
    }


def _iso(wall: float) -> str | None:
    if not wall:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
