"""`DELETE /admin/cache/{pattern}` (also `DELETE /v1/cache/{pattern}`): drop cached answers.

The pattern is `project[/module[/environment[/model]]]`; the project is a literal name, the other
parts may use Redis glob characters (`*`, `?`, `[...]`) and default to `*`. So a deletion never
reaches beyond one project. The keys are found with SCAN (never KEYS) and removed with UNLINK.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fd2.control.manifests.models import NAME_PATTERN
from fd2.response_cache.store import PREFIX, CacheStore
from fd2.serving.errors import BadRequest, ServiceUnavailable

PATHS: Final = ("/admin/cache/", "/v1/cache/")
_PART: Final = re.compile(r"^[A-Za-z0-9_.*?\[\]-]{1,64}$")
_MODEL: Final = re.compile(r"^[A-Za-z0-9_.:/@*?\[\]-]{1,256}$")


def redis_pattern(pattern: str) -> str:
    """The Redis MATCH pattern for an admin pattern; BadRequest when it is not one."""
    parts = pattern.split("/", 3)
    project = parts[0]
    if not NAME_PATTERN.match(project):
        raise BadRequest(
            "The cache pattern must start with a project name (no wildcards): "
            "project[/module[/environment[/model]]].",
            param="pattern",
        )
    rest = [*parts[1:], *["*"] * (4 - len(parts))]
    for index, part in enumerate(rest):
        if not (_MODEL if index == 2 else _PART).match(part):
            raise BadRequest(
                "The cache pattern has a part with characters it cannot have.", param="pattern"
            )
    module, environment, model = rest
    return f"{PREFIX}{project}:{module}:{environment}:{model}:*"


async def delete(redis: Any, path: str) -> dict[str, Any]:
    if redis is None:
        raise ServiceUnavailable("The response cache needs --redis-url; this gateway has none.")
    pattern = next(path[len(prefix) :] for prefix in PATHS if path.startswith(prefix))
    match = redis_pattern(pattern)
    deleted = await CacheStore(redis).delete(match)
    return {"object": "cache.deletion", "pattern": pattern, "deleted": deleted}
