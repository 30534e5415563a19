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
    project: str, modules: int, environments: tuple[str, ...], upstream: str, version: int = 1
) -> dict[str, Any]:
    """`upstream` is a base URL ending in /v1; `version` changes the manifest (a new revision)."""
    return {
        "project_id": project,
        "project_name": f"synthetic {project}",
        "version": f"1.0.{version}",
        "owner": "bench",
        "environment": environments[0],
        "environments": {
            "common": {"secrets": {"key": "env:BENCH_UPSTREAM_KEY"}},
            **{env: {"urls": {"llm_base_url": upstream}} for env in environments},
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
                    "model_name": "gpt-4o-mini",
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
) -> int:
    """Write `projects` manifests; returns the number of (project, module, environment) routes."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(projects):
        name = f"{prefix}-{index}"
        manifest = project_manifest(name, modules, environments, upstream)
        (directory / f"{name}.json").write_text(json.dumps(manifest))
    return projects * modules * len(environments)
