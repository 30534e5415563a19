"""The Control Tower's manifest API, answer for answer: what each call returns, in which order
its checks run, and FastAPI's error bodies (`{"detail": "..."}`, and the 422 list).

Order of checks, as observed on the real service: the body is parsed as JSON first (422
`json_invalid`, or 400 for undecodable bytes); then the superuser header (missing: a 422 entry,
reported together with the body's; wrong: 401 after a one-second pause); then the body against the
models; then the endpoint's own checks (project_id format, existence, duplicate module names).
Reads (GET) need no secret.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from ct_models import REQUEST
from ct_store import Store
from ct_types import Invalid, error, plain

_PROJECT_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_BAD_ID = "Invalid project_id format. Use only alphanumeric characters, underscores, and hyphens."
_SECRET_HEADER = "X-DSPAI-Client-Secret"
_NO_BODY = object()


@dataclass
class Answer:
    status: int
    payload: Any  # JSON-ready data, or bytes sent as they are
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _detail(status: int, detail: str) -> Answer:
    return Answer(status, {"detail": detail})


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class ManifestApi:
    def __init__(self, store: Store, superuser_secret: str | None) -> None:
        self.store = store
        self.superuser_secret = superuser_secret

    async def handle(
        self, method: str, parts: list[str], headers: dict[bytes, bytes], body: bytes
    ) -> Answer:
        """`parts`: the path's segments, the first being "manifests"."""
        try:
            return await self._route(method, parts, headers, body)
        except _Refused as refused:
            return refused.answer

    async def _route(
        self, method: str, parts: list[str], headers: dict[bytes, bytes], body: bytes
    ) -> Answer:
        allowed: tuple[str, ...]
        if len(parts) == 1:
            allowed = ("GET", "POST")
        elif len(parts) == 2:
            allowed = ("GET", "PUT", "DELETE") + (("POST",) if parts[1] == "validate" else ())
        elif len(parts) in (3, 4) and parts[2] == "modules":
            allowed = ("GET",)
        else:
            return _detail(404, "Not Found")
        if method not in allowed:
            # Starlette names the first route that matched the path: the GET one.
            answer = _detail(405, "Method Not Allowed")
            answer.headers.append((b"allow", b"GET"))
            return answer
        if method == "GET":
            return self._read(parts)
        if parts == ["manifests", "validate"]:
            return self._validate(await self._manifest(headers, body, superuser=False))
        if method == "DELETE":
            await self._manifest(headers, None, superuser=True)
            return self._delete(parts[1])
        manifest = await self._manifest(headers, body, superuser=True)
        return self._create(manifest) if method == "POST" else self._update(parts[1], manifest)

    # ---- reads

    def _read(self, parts: list[str]) -> Answer:
        if len(parts) == 1:
            listing = self.store.listing()
            return Answer(200, {"manifests": listing, "count": len(listing)})
        project = parts[1]
        if not _PROJECT_ID.match(project):
            return _detail(400, _BAD_ID)
        manifest = self.store.load(project)
        if manifest is None:
            return _detail(404, f"Manifest not found: {project}")
        if len(parts) == 2:
            return Answer(200, plain(manifest))
        modules = manifest["modules"]
        if len(parts) == 3:
            return Answer(200, {"modules": plain(modules), "count": len(modules)})
        for module in modules:
            if module["name"] == parts[3]:
                return Answer(200, plain(module))
        return _detail(404, f"Module not found: {parts[3]}")

    # ---- writes

    def _create(self, manifest: dict[str, Any]) -> Answer:
        project = manifest["project_id"]
        if not _PROJECT_ID.match(project):
            return _detail(400, _BAD_ID)
        if (
            self.store.load(project) is not None
        ):  # a stored file that fails the models is no obstacle
            return _detail(409, f"Manifest already exists: {project}")
        self._check_names(manifest)
        self.store.save(manifest)
        return self._saved("created", project, 201)

    def _update(self, project: str, manifest: dict[str, Any]) -> Answer:
        if project != manifest["project_id"]:
            return _detail(400, "project_id in path must match project_id in manifest")
        if not _PROJECT_ID.match(project):
            return _detail(400, _BAD_ID)
        existing = self.store.load(project)
        if existing is None:
            return _detail(404, f"Manifest not found: {project}")
        self._check_names(manifest)
        manifest["created_at"] = existing["created_at"]  # "now" when the stored file had none
        self.store.save(manifest)
        return self._saved("updated", project, 200)

    def _delete(self, project: str) -> Answer:
        if not _PROJECT_ID.match(project):
            return _detail(400, _BAD_ID)
        if not self.store.delete(project):  # any file, valid or not
            return _detail(404, f"Manifest not found: {project}")
        return Answer(200, {"message": f"Manifest deleted successfully: {project}"})

    def _validate(self, manifest: dict[str, Any]) -> Answer:
        errors = [] if _PROJECT_ID.match(manifest["project_id"]) else [_BAD_ID]
        duplicates = _duplicates(manifest)
        if duplicates:  # reported twice by the real service: by its dependency check and again
            errors.append(f"Duplicate module names found: {', '.join(duplicates)}")
            errors.append(f"Duplicate module names found: {', '.join(duplicates)}")
        warnings = []
        for status, word in (("disabled", "Disabled"), ("deprecated", "Deprecated")):
            names = [m["name"] for m in manifest["modules"] if m["status"] == status]
            if names:
                warnings.append(f"{word} modules found: {', '.join(names)}")
        return Answer(200, {"valid": not errors, "errors": errors, "warnings": warnings})

    @staticmethod
    def _check_names(manifest: dict[str, Any]) -> None:
        duplicates = _duplicates(manifest)
        if duplicates:
            raise _Refused(
                _detail(
                    400,
                    "Dependency validation failed: Duplicate module names found: "
                    + ", ".join(duplicates),
                )
            )

    @staticmethod
    def _saved(verb: str, project: str, status: int) -> Answer:
        return Answer(
            status,
            {
                "message": f"Manifest {verb} successfully: {project}",
                "manifest_id": project,
                "manifest_path": f"manifests/{project}.json",
            },
        )

    # ---- the request: body, superuser header, models

    async def _manifest(
        self, headers: dict[bytes, bytes], body: bytes | None, *, superuser: bool
    ) -> dict[str, Any]:
        """The checked manifest of a write request (None for DELETE, which has no body)."""
        parsed = _NO_BODY if body is None else _parse(headers, body)
        errors = []
        if superuser:
            given = headers.get(_SECRET_HEADER.lower().encode())
            if given is None:
                errors.append(
                    {**error("missing", "Field required", None), "loc": ["header", _SECRET_HEADER]}
                )
            elif not self._is_superuser(given):
                await asyncio.sleep(1)  # the real service's pause against guessing
                raise _Refused(_detail(401, "Invalid superuser credentials"))
        manifest: dict[str, Any] = {}
        if parsed is _NO_BODY and body is not None:
            errors.append({**error("missing", "Field required", None), "loc": ["body"]})
        elif body is not None:
            try:
                manifest = REQUEST.check(parsed).value["manifest"]
            except Invalid as exc:
                errors += exc.under("body").errors
        if errors:
            raise _Refused(Answer(422, {"detail": plain(errors)}))
        return manifest

    def _is_superuser(self, given: bytes) -> bool:
        wanted = self.superuser_secret
        return wanted is not None and hmac.compare_digest(given, wanted.encode())


def _parse(headers: dict[bytes, bytes], body: bytes) -> Any:
    """FastAPI's reading of a body: JSON only under a JSON content type, else the bytes (as
    text, which is how its 422 echoes them)."""
    if not body:
        return _NO_BODY
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if not content_type or message.get_content_maintype() != "application":
        return body.decode(errors="replace")
    if subtype != "json" and not subtype.endswith("+json"):
        return body.decode(errors="replace")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        failure = error("json_invalid", "JSON decode error", {}, {"error": exc.msg})
        raise _Refused(Answer(422, {"detail": [{**failure, "loc": ["body", exc.pos]}]})) from None
    except ValueError:
        raise _Refused(_detail(400, "There was an error parsing the body")) from None


def _duplicates(manifest: dict[str, Any]) -> list[str]:
    """Names used twice, in order of first use (the real service lists them in set order)."""
    names = [module["name"] for module in manifest["modules"]]
    return list(dict.fromkeys(name for name in names if names.count(name) > 1))
