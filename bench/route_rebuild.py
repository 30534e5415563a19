"""Route-table rebuild times: a whole table of ~10k routes, and one project changing inside it.

Run: `.venv/bin/python bench/route_rebuild.py [--quick]`. Projects are generated like the
reference manifest (inference modules in two environments, placeholders, env: references) and
compiled by the real RouteBuilder and the real inference module; no network is touched.
`--quick` (the smoke run of `make test`) builds ~100 routes and asserts no speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import aiohttp

from fd2.control.manifests.compile import content_digest
from fd2.control.manifests.decode import convert_manifest
from fd2.control.registry import ModuleRegistry
from fd2.control.route_builder import RouteBuilder
from fd2.control.secrets import SecretResolver
from fd2.module import Timeouts

MODULES_PER_PROJECT = 5
ENVIRONMENTS = ("development", "production")


def project_manifest(project: str, prompt: str = "v1") -> dict[str, Any]:
    modules = [
        {
            "module_type": "inference_endpoint",
            "name": f"m{index}",
            "config": {
                "model_name": "gpt-4o-mini",
                "endpoint_url": "${environments.${environment}.urls.llm}/chat/completions",
                "api_key": "${environments.common.secrets.key}",
                "system_prompt": prompt,
            },
        }
        for index in range(MODULES_PER_PROJECT)
    ]
    return {
        "project_id": project,
        "version": "1",
        "environment": "development",
        "environments": {
            "common": {"secrets": {"key": "env:BENCH_API_KEY"}},
            **{env: {"urls": {"llm": f"http://127.0.0.1:9/{env}"}} for env in ENVIRONMENTS},
        },
        "modules": modules,
    }


async def apply(builder: RouteBuilder, raw: dict[str, Any]) -> float:
    began = time.perf_counter()
    manifest = convert_manifest(raw, origin="bench")
    await builder.apply_project(raw["project_id"], [("bench", manifest)], content_digest(raw))
    return time.perf_counter() - began


async def main(quick: bool) -> None:
    os.environ.setdefault("BENCH_API_KEY", "bench-key")
    projects = 10 if quick else 1000
    async with aiohttp.ClientSession() as http:
        builder = RouteBuilder(
            registry=ModuleRegistry(),
            secrets=SecretResolver(),
            http=http,
            default_environment="development",
            base_timeouts=Timeouts(),
            environ=os.environ,
        )
        began = time.perf_counter()
        for index in range(projects):
            await apply(builder, project_manifest(f"p{index}"))
        full = time.perf_counter() - began
        routes = len(builder.table)
        assert routes == projects * MODULES_PER_PROJECT * len(ENVIRONMENTS), routes
        print(f"table of {routes} routes ({projects} projects) built in {full * 1000:.0f} ms")

        changes = [await apply(builder, project_manifest("p0", f"v{n}")) for n in range(2, 32)]
        unchanged = [await apply(builder, project_manifest("p0", "v31")) for _ in range(30)]
        print(
            f"one project ({MODULES_PER_PROJECT * len(ENVIRONMENTS)} routes) changed in a "
            f"{routes}-route table: median {statistics.median(changes) * 1000:.2f} ms, "
            f"max {max(changes) * 1000:.2f} ms"
        )
        print(
            f"unchanged content (digest skip): median {statistics.median(unchanged) * 1e6:.0f} us"
        )
        assert builder.rebuilds == projects + len(changes)
        await builder.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small table, for the smoke run")
    asyncio.run(main(parser.parse_args().quick))
