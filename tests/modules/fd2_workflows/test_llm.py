"""Model calls through a module handle: the request, the retries, the error each failure becomes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson
import pytest

from fd2.serving.errors import Fd2Error
from fd2.serving.module_calls import ModuleHandle
from fd2_workflows.llm import HandleCaller


class Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self._body = body if isinstance(body, bytes) else orjson.dumps(body)

    async def read(self) -> bytes:
        return self._body

    async def __aenter__(self) -> Answer:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


class Handle:
    """Answers from a script, recording what it was called with."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, Any, tuple[tuple[bytes, bytes], ...], str | None]] = []

    async def call(
        self, method: str, path: str, body: Any, *, headers: Any = (), request_id: str | None = None
    ) -> Answer:
        self.calls.append((method, path, body, tuple(headers), request_id))
        return self.answers.pop(0)


def chat(text: str) -> Answer:
    return Answer(200, {"choices": [{"message": {"role": "assistant", "content": text}}]})


def error(status: int, message: str = "no") -> Answer:
    return Answer(status, {"error": {"message": message, "type": "x", "code": None}})


def caller(handle: Handle, attempts: int = 3) -> HandleCaller:
    handles = cast(Mapping[str, ModuleHandle], {"llm": handle})
    return HandleCaller(
        handles, forward=[(b"authorization", b"Bearer k")], request_id="r1", attempts=attempts
    )


async def test_a_call_carries_the_callers_credential_and_request_id() -> None:
    handle = Handle(chat("hi"))
    assert await caller(handle)("n", "llm", {"messages": []}) == "hi"
    assert handle.calls == [
        ("POST", "/v1/chat/completions", {"messages": []}, ((b"authorization", b"Bearer k"),), "r1")
    ]


async def test_what_may_succeed_is_retried() -> None:
    handle = Handle(error(503), error(429), chat("third time"))
    call = caller(handle)
    assert await call("n", "llm", {}) == "third time"
    assert call.calls == 3


@pytest.mark.parametrize(
    ("answers", "status", "code", "calls", "words"),
    [
        (
            (error(500, "boom"),) * 3,
            502,
            "workflow_node_failed",
            3,
            "answered 500: boom (after 3 attempts)",
        ),
        ((error(400, "bad"),), 502, "workflow_node_failed", 1, "answered 400: bad"),
        ((error(429),) * 3, 429, "rate_limit_exceeded", 3, "answered 429"),
        ((error(401),), 401, "invalid_api_key", 1, "answered 401"),
        ((error(403),), 403, "permission_denied", 1, "answered 403"),
        ((error(504),) * 3, 504, "workflow_node_timeout", 3, "answered 504"),
        ((Answer(200, b"<html>"),) * 3, 502, "workflow_node_failed", 3, "not a chat completion"),
        ((Answer(500, b"plain"),) * 3, 502, "workflow_node_failed", 3, "not an OpenAI error"),
    ],
)
async def test_each_failure_names_the_node_with_the_status_that_fits(
    answers: tuple[Answer, ...], status: int, code: str, calls: int, words: str
) -> None:
    handle = Handle(*answers)
    with pytest.raises(Fd2Error) as failed:
        await caller(handle)("summarize", "llm", {})
    assert (failed.value.status, failed.value.code) == (status, code)
    assert "workflow node 'summarize'" in failed.value.message and words in failed.value.message
    assert len(handle.calls) == calls


async def test_no_retries_when_retry_on_error_is_off() -> None:
    handle = Handle(error(503))
    with pytest.raises(Fd2Error):
        await caller(handle, attempts=1)("n", "llm", {})
    assert len(handle.calls) == 1
