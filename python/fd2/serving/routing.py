"""Which (project, module, endpoint path) a request is for: path, header or subdomain.

Names are checked on the raw (still percent-encoded) path, so `%2F` or `..` can never smuggle a
segment boundary past the check: anything but `[A-Za-z0-9_-]{1,64}` is refused before any lookup.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from fd2.serving.errors import InvalidRoute, NotFound

_NAME = re.compile(rb"^[A-Za-z0-9_-]{1,64}$")
_NAME_RULE = "must match [A-Za-z0-9_-]{1,64}"


class RouteKey(NamedTuple):
    project: str
    module: str
    path: str
    """The endpoint path inside the module, e.g. `/v1/chat/completions`."""


def key_from_path(raw_path: bytes) -> RouteKey:
    """`/{project}/{module}/<endpoint path>`."""
    parts = raw_path.split(b"/", 3)
    # parts[0] is the empty string before the leading slash.
    if len(parts) < 3 or parts[0]:
        raise NotFound(
            "No route for this path: use /{project}/{module}/<endpoint>, "
            "or the X-Project-Module header."
        )
    project, module = parts[1], parts[2]
    _check("project", project)
    _check("module", module)
    rest = b"/" + parts[3] if len(parts) == 4 else b"/"
    return RouteKey(project.decode("ascii"), module.decode("ascii"), rest.decode("latin-1"))


TYPED_PREFIXES: Final = {
    "rag": frozenset({"rag_service"}),
    "models": frozenset({"model_server"}),
    "workflow": frozenset({"langgraph_workflow"}),
}
"""The Control Tower's documents address some module types as `/{project}/<prefix>/{module}/…`
(RAG_MODEL_SERVER_INTEGRATION.md, LANGGRAPH_INTEGRATION.md). fd2 serves those paths too, for a
module of the matching type, when the project has no module named like the prefix itself."""


def typed_key(key: RouteKey) -> RouteKey | None:
    """`/{project}/rag/{module}/rest` read as module `{module}`, path `/rest`; None when the key's
    module is no prefix or the path names no valid module."""
    if key.module not in TYPED_PREFIXES:
        return None
    _, module, rest = (key.path + ("" if key.path.count("/") > 1 else "/")).split("/", 2)
    if not _NAME.match(module.encode("latin-1")):
        return None
    return RouteKey(key.project, module, "/" + rest)


def key_from_header(value: bytes, raw_path: bytes) -> RouteKey:
    """`X-Project-Module: project/module`, with the plain endpoint path."""
    project, sep, module = value.strip().partition(b"/")
    if not sep:
        raise InvalidRoute("X-Project-Module must be 'project/module'.", param="X-Project-Module")
    _check("project", project, "X-Project-Module")
    _check("module", module, "X-Project-Module")
    return RouteKey(project.decode("ascii"), module.decode("ascii"), raw_path.decode("latin-1"))


def subdomain_candidates(host: bytes, base_domain: bytes) -> list[tuple[str, str]]:
    """(project, module) pairs a `{project}-{module}.<base domain>` host can mean.

    Names may contain '-', so a label splits in several ways; the caller takes the first pair
    that is known. Hosts outside the base domain give no candidates.
    """
    name = host.rsplit(b":", 1)[0] if b"]" not in host else host
    name = name.lower().rstrip(b".")
    suffix = b"." + base_domain.lower().strip(b".")
    if not name.endswith(suffix):
        return []
    label = name[: -len(suffix)]
    if b"." in label:
        return []
    candidates = []
    for index, char in enumerate(label):
        if char == ord("-"):
            project, module = label[:index], label[index + 1 :]
            if _NAME.match(project) and _NAME.match(module):
                candidates.append((project.decode("ascii"), module.decode("ascii")))
    return candidates


def _check(kind: str, value: bytes, param: str | None = None) -> None:
    if not _NAME.match(value):
        raise InvalidRoute(f"Invalid {kind} name: it {_NAME_RULE}.", param=param or kind)
