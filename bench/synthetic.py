"""Synthetic manifests in the Control Tower format, for load profiles and route-table figures.

Every module is an `inference_endpoint` whose upstream URL comes from the environment's map, so a
manifest yields modules x environments routes, like the real multi-environment manifests do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "staging", "production")


def project_manifest(
    project: str,
    modules: int,
    environments: tuple[str, ...],
    upstream: str,
    version: int = 1,
    *,
    distinct: bool = False,
) -> dict[str, Any]:
    """`upstream` is a base URL ending in /v1; `version` changes the manifest (a new revision).
    `distinct`: no two routes share their settings (an upstream URL per project and environment,
    a model per module), so nothing built for one route can serve another's."""
    urls = {
        env: upstream.removesuffix("/v1") + f"/{project}/{env}/v1" if distinct else upstream
        for env in environments
    }
    return {
        "project_id": project,
        "project_name": f"synthetic {project}",
        "version": f"1.0.{version}",
        "owner": "bench",
        "environment": environments[0],
        "environments": {
            "common": {"secrets": {"key": "env:BENCH_UPSTREAM_KEY"}},
            **{env: {"urls": {"llm_base_url": urls[env]}} for env in environments},
        },
        "modules": [
            {
                "module_type": "inference_endpoint",
                "name": f"chat-{index}",
                "status": "enabled",
                # The load profiles measure an open route: said explicitly (fd2 opens nothing by
                # omission).
                "auth": {"mode": "none"},
                "config": {
                    "model_name": f"gpt-4o-mini-{index}" if distinct else "gpt-4o-mini",
                    "endpoint_url": "${environments.${environment}.urls.llm_base_url}"
                    "/chat/completions",
                    "api_key": "${environments.common.secrets.key}",
                    "max_tokens": 256 + version,
                },
            }
            for index in range(modules)
        ],
    }


def write_projects(
    directory: Path,
    projects: int,
    modules: int,
    environments: tuple[str, ...],
    upstream: str,
    prefix: str = "tenant",
    *,
    distinct: bool = False,
) -> int:
    """Write `projects` manifests; returns the number of (project, module, environment) routes."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(projects):
        name = f"{prefix}-{index}"
        manifest = project_manifest(name, modules, environments, upstream, distinct=distinct)
        (directory / f"{name}.json").write_text(json.dumps(manifest))
    return projects * modules * len(environments)
