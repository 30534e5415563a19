"""Stored responses: the worker-memory store (no Redis) and the GET/DELETE handlers of
`/v1/responses/{id}` (served once the core routes `/v1/responses/*`)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from fd2.prompts.resolve import PromptResolver
from fd2.serving.errors import NotFound
from fd2.serving.request import Request
from fd2.types import Message
from fd2_inference.responses.endpoint import ResponsesEndpoint
from fd2_inference.responses.store import ResponseStore


class _NoChat:
    async def complete(self, body: dict[str, Any], request: Any) -> Any:
        raise AssertionError("not called")

    def stream(self, body: dict[str, Any], request: Any) -> Any:
        raise AssertionError("not called")


def _request(path: str, method: str) -> Request:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    return Request(
        scope,
        receive,
        request_id="r1",
        project="p",
        module="m",
        environment="development",
        path=path,
        content_length=0,
        max_body=1024,
    )


async def test_memory_store_keeps_scoped_records() -> None:
    store = ResponseStore(None, "p", "m", ttl_s=60)
    await store.put("resp_a", {"response": {"id": "resp_a"}, "history": []})
    assert (await store.get("resp_a")) == {"response": {"id": "resp_a"}, "history": []}
    assert await store.get("resp_b") is None
    assert await store.delete("resp_a") is True
    assert await store.get("resp_a") is None


async def test_retrieve_and_delete_handlers() -> None:
    store = ResponseStore(None, "p", "m", ttl_s=60)
    endpoint = ResponsesEndpoint(
        _NoChat(), store, PromptResolver("p", {}, None), logging.getLogger("t"), None
    )
    await store.put("resp_" + "1" * 32, {"response": {"id": "resp_" + "1" * 32}, "history": []})
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await endpoint.retrieve(_request("/v1/responses/resp_" + "1" * 32, "GET"), send)
    assert orjson.loads(sent[1]["body"]) == {"id": "resp_" + "1" * 32}
    sent.clear()
    await endpoint.delete(_request("/v1/responses/resp_" + "1" * 32, "DELETE"), send)
    assert orjson.loads(sent[1]["body"])["deleted"] is True
    with pytest.raises(NotFound):
        await endpoint.retrieve(_request("/v1/responses/resp_" + "1" * 32, "GET"), send)
    with pytest.raises(NotFound):
        await endpoint.retrieve(_request("/v1/responses/../../etc", "GET"), send)
