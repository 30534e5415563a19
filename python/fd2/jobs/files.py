"""`/v1/files` for OpenAI's Batch API: batch input files (JSONL, checked on upload) and the
output and error files batches write. Stored in Redis per project, kept as long as jobs are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any, Final

import orjson

from fd2.jobs import keys
from fd2.jobs.http import limit_of, page, query, send_json, tail_id
from fd2.jobs.records import decode_hash, new_id
from fd2.serving.errors import BadRequest, NotFound
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send

if TYPE_CHECKING:
    from fd2.jobs.api import JobRoute
    from fd2.jobs.service import JobService

FILES_PATH: Final = "/v1/files"
_MAX_CUSTOM_ID: Final = 512


class FilesApi:
    def __init__(self, service: JobService, route: JobRoute) -> None:
        self._service = service
        self._route = route

    def handlers(self) -> dict[str, dict[str, Any]]:
        return {
            FILES_PATH: {"POST": self.upload, "GET": self.list},
            FILES_PATH + "/*": {"GET": self.get, "DELETE": self.delete},
        }

    async def upload(self, request: Request, send: Send) -> None:
        store = self._service.require_store()
        fields, filename, content = parse_upload(
            request.header(b"content-type") or b"", await request.body()
        )
        if fields.get("purpose") != "batch":
            raise BadRequest("purpose must be 'batch'.", param="purpose")
        check_batch_input(content, self._route.endpoints, self._service.settings.batch_max_requests)
        record = await save_file(
            self._service,
            request.project,
            request.module,
            content,
            filename=filename,
            purpose="batch",
        )
        del store
        await send_json(send, 200, file_view(record))

    async def get(self, request: Request, send: Send) -> None:
        redis = self._service.require_store().redis
        file_id, more = tail_id(request, FILES_PATH)
        raw = await redis.hgetall(keys.file(request.project, file_id))
        if not raw or decode_hash(raw).get("module") != request.module:
            raise NotFound(f"No file {file_id!r}.")
        if more == "content":
            content = await redis.get(keys.file_content(request.project, file_id)) or b""
            await send_bytes(send, 200, content, b"application/octet-stream")
        elif not more:
            await send_json(send, 200, file_view(decode_hash(raw)))
        else:
            raise NotFound(f"Unknown endpoint {request.path}.")

    async def list(self, request: Request, send: Send) -> None:
        """Newest first; `purpose`, `limit` (1 to 10000, default 10000) and `after` as OpenAI's."""
        redis = self._service.require_store().redis
        params = query(request)
        purpose = params.get("purpose")
        index = keys.files_index(request.project, request.module)
        start = 0
        if params.get("after"):
            rank = await redis.zrevrank(index, params["after"])
            start = int(rank) + 1 if rank is not None else 0
        limit = limit_of(params, default=10000, most=10000)
        rows: list[dict[str, Any]] = []
        gone: list[bytes] = []
        more = False
        for file_id in await redis.zrevrange(index, start, -1):
            raw = await redis.hgetall(keys.file(request.project, file_id.decode()))
            if not raw:
                gone.append(file_id)
                continue
            record = decode_hash(raw)
            if purpose is not None and record["purpose"] != purpose:
                continue
            if len(rows) == limit:
                more = True
                break
            rows.append(file_view(record))
        if gone:
            await redis.zrem(index, *gone)
        await send_json(send, 200, page(rows, more))

    async def delete(self, request: Request, send: Send) -> None:
        redis = self._service.require_store().redis
        file_id, more = tail_id(request, FILES_PATH)
        owner = await redis.hget(keys.file(request.project, file_id), "module")
        if (
            more
            or owner != request.module.encode()
            or not await redis.delete(
                keys.file(request.project, file_id), keys.file_content(request.project, file_id)
            )
        ):
            raise NotFound(f"No file {file_id!r}.")
        await send_json(send, 200, {"id": file_id, "object": "file", "deleted": True})


async def save_file(
    service: JobService,
    project: str,
    module: str,
    content: bytes,
    *,
    filename: str,
    purpose: str,
    file_id: str | None = None,
) -> dict[str, str]:
    redis = service.require_store().redis
    now = int(time.time())
    keep = int(service.settings.ttl_s + service.settings.retention_s)
    record = {
        "id": file_id or new_id("file"),
        "module": module,
        "bytes": str(len(content)),
        "created_at": str(now),
        "expires_at": str(now + keep),
        "filename": filename,
        "purpose": purpose,
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.file(project, record["id"]), mapping=record)
        pipe.set(keys.file_content(project, record["id"]), content, ex=keep)
        pipe.expire(keys.file(project, record["id"]), keep)
        pipe.zadd(keys.files_index(project, module), {record["id"]: now})
        pipe.expire(keys.files_index(project, module), keep)
        await pipe.execute()
    return record


def file_view(record: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "object": "file",
        "bytes": int(record["bytes"]),
        "created_at": int(record["created_at"]),
        "expires_at": int(record["expires_at"]),
        "filename": record["filename"],
        "purpose": record["purpose"],
        "status": "processed",
        "status_details": None,
    }


def parse_upload(content_type: bytes, body: bytes) -> tuple[dict[str, str], str, bytes]:
    """A multipart/form-data upload: its text fields, and the `file` part's name and bytes."""
    if not content_type.lower().startswith(b"multipart/form-data"):
        raise BadRequest("Upload the file as multipart/form-data.")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise BadRequest("The multipart body could not be read.")
    fields: dict[str, str] = {}
    filename, content = "", None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if name == "file":
            filename = str(part.get_filename() or "input.jsonl")[:256]
            content = payload
        else:
            fields[name] = payload.decode("utf-8", "replace")
    if content is None:
        raise BadRequest("The upload has no file part.", param="file")
    return fields, filename, content


def check_batch_input(content: bytes, endpoints: frozenset[str], most: int) -> list[dict[str, Any]]:
    """The requests of a batch input file, each checked: a JSON object per line with a unique
    `custom_id`, method POST, a `url` this module serves, and a JSON object `body`."""
    requests: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise BadRequest(f"{where}: not a JSON object.", param="file") from None
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: not a JSON object.", param="file")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > _MAX_CUSTOM_ID:
            raise BadRequest(f"{where}: custom_id must be a non-empty string.", param="file")
        if custom_id in seen:
            raise BadRequest(f"{where}: custom_id {custom_id!r} is used twice.", param="file")
        seen.add(custom_id)
        if item.get("method") != "POST":
            raise BadRequest(f"{where}: method must be POST.", param="file")
        if item.get("url") not in endpoints:
            raise BadRequest(f"{where}: url is not an endpoint of this module.", param="file")
        body = item.get("body")
        if not isinstance(body, dict):
            raise BadRequest(f"{where}: body must be a JSON object.", param="file")
        if body.get("stream"):
            raise BadRequest(f"{where}: stream must be off in a batch.", param="file")
        requests.append(item)
        if len(requests) > most:
            raise BadRequest(f"The file holds more than {most} requests.", param="file")
    if not requests:
        raise BadRequest("The file holds no requests.", param="file")
    return requests
