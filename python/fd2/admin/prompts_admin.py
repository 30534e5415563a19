"""`/admin/prompts/...`: the prompt store in Redis (fd2.prompts.store), behind the admin token.

    GET    /admin/prompts/{project}                          the project's prompt ids
    POST   /admin/prompts/{project}/{id}/versions            a new version (body: the version,
                                                             optionally "labels": [...]) -> 201
    GET    /admin/prompts/{project}/{id}                     versions and labels
    GET    /admin/prompts/{project}/{id}/versions/{n}        one version
    PUT    /admin/prompts/{project}/{id}/labels/{label}      {"version": n}
    DELETE /admin/prompts/{project}/{id}/labels/{label}
    DELETE /admin/prompts/{project}/{id}                     the prompt, every version

A version is checked whole before it is stored (templates, sandbox, JSON Schemas): a bad one is
a 400 naming the problem, and nothing is stored. Every change is published to the replicas.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import orjson

from fd2.control.manifests.models import NAME_PATTERN
from fd2.prompts.errors import PromptNotFound
from fd2.prompts.models import ID_PATTERN
from fd2.prompts.store import PromptStore
from fd2.serving.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from fd2.types import Receive

PREFIX: Final = "/admin/prompts/"
MAX_BODY: Final = 1024 * 1024
_PATH: Final = re.compile(
    r"^/admin/prompts/(?P<project>[^/]+)"
    r"(?:/(?P<id>[^/]+)(?:/(?P<kind>versions|labels)(?:/(?P<item>[^/]+))?)?)?$"
)


async def read_json(receive: Receive | None) -> Any:
    if receive is None:
        raise BadRequest("A JSON body is required.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("The request body could not be read.")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"An admin body is at most {MAX_BODY} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None


async def handle(
    redis: Any, method: str, path: str, receive: Receive | None
) -> tuple[int, dict[str, Any]]:
    """(status, answer) for a prompt admin request."""
    match = _PATH.match(path)
    if match is None:
        raise NotFound(f"Unknown admin endpoint {path[:200]}.")
    project, prompt_id, kind, item = match.group("project", "id", "kind", "item")
    if not NAME_PATTERN.match(project):
        raise BadRequest("Not a project name.", param="project")
    if prompt_id is not None and not ID_PATTERN.match(prompt_id):
        raise BadRequest("A prompt id is 1 to 128 letters, digits, '_', '.' or '-'.", param="id")
    if redis is None:
        raise ServiceUnavailable("The prompt store needs --redis-url; this gateway has none.")
    store = PromptStore(redis)
    if prompt_id is None:
        _only(method, "GET")
        ids = await store.list(project)
        return 200, {"object": "list", "project": project, "data": ids}
    if kind is None:
        if method == "GET":
            return 200, await store.describe(project, prompt_id)
        _only(method, "DELETE")
        if not await store.delete(project, prompt_id):
            raise PromptNotFound(f"Prompt {prompt_id!r} does not exist.")
        return 200, {"id": prompt_id, "object": "prompt.deleted", "deleted": True}
    if kind == "versions":
        if item is None:
            _only(method, "POST")
            return 201, await _create(store, project, prompt_id, await read_json(receive))
        _only(method, "GET")
        return 200, await _version(store, project, prompt_id, item)
    if item is None:
        raise NotFound("Name the label: /admin/prompts/{project}/{id}/labels/{label}.")
    if method == "DELETE":
        if not await store.delete_label(project, prompt_id, item):
            raise PromptNotFound(f"Prompt {prompt_id!r} has no label {item[:64]!r}.")
        return 200, {"id": prompt_id, "label": item, "deleted": True}
    _only(method, "PUT")
    body = await read_json(receive)
    number = body.get("version") if isinstance(body, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise BadRequest('The body must be {"version": <number>}.', param="version")
    return 200, await store.set_label(project, prompt_id, item, number)


async def _create(store: PromptStore, project: str, prompt_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The body must be a prompt version object.")
    labels = body.pop("labels", [])
    if not isinstance(labels, list):
        raise BadRequest("'labels' must be a list of label names.", param="labels")
    return await store.create_version(project, prompt_id, body, labels)


async def _version(store: PromptStore, project: str, prompt_id: str, item: str) -> dict[str, Any]:
    prompt = await store.load(project, prompt_id)
    if prompt is None:
        raise PromptNotFound(f"Prompt {prompt_id!r} does not exist.")
    version = prompt.version(item)
    return {"id": prompt_id, "version": version.number, **msgspec.to_builtins(version.source)}


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise MethodNotAllowed(f"Method {method} is not allowed here.", allowed=(allowed,))
