"""Small request/answer helpers the job, file and batch endpoints share."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson

from fd2.serving.errors import BadRequest, Fd2Error
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes
from fd2.types import Send


class Conflict(Fd2Error):
    status = 409
    error_type = "invalid_request_error"
    code = "conflict"


async def send_json(send: Send, status: int, value: Any) -> None:
    await send_bytes(send, status, orjson.dumps(value))


def query(request: Request) -> dict[str, str]:
    raw: bytes = request.scope.get("query_string", b"")
    try:
        parsed = parse_qs(raw.decode("ascii"), strict_parsing=False)
    except UnicodeDecodeError:
        raise BadRequest("The query string is not ASCII.") from None
    return {name: values[-1] for name, values in parsed.items()}


def limit_of(params: dict[str, str], default: int = 20, most: int = 100) -> int:
    text = params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise BadRequest(f"limit must be an integer from 1 to {most}.", param="limit")
    return int(text)


def tail_id(request: Request, prefix: str) -> tuple[str, str]:
    """For `/v1/jobs/{id}` style paths below `prefix`: the id and what follows it."""
    rest = request.path.removeprefix(prefix).strip("/")
    item, _, more = rest.partition("/")
    if not item or len(item) > 128:
        raise BadRequest("Missing or invalid id in the path.")
    return item, more


def page(items: list[dict[str, Any]], has_more: bool, key: str = "id") -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0][key] if items else None,
        "last_id": items[-1][key] if items else None,
        "has_more": has_more,
    }
