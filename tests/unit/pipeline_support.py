"""What the pipeline step tests share: requests, a recording `send`, a handler, a meter."""

from __future__ import annotations

from typing import Any

import orjson

from fd2.metering import Cost, Usage
from fd2.serving.request import Request
from fd2.serving.responses import send_bytes


def make_request(
    body: dict[str, Any] | None = None,
    *,
    method: str = "POST",
    path: str = "/v1/chat/completions",
    headers: list[tuple[bytes, bytes]] | None = None,
    client: tuple[str, int] = ("10.0.0.7", 5000),
) -> Request:
    raw = orjson.dumps(body) if body is not None else b""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(
        {"method": method, "headers": headers or [], "client": client},
        receive,
        request_id="r-1",
        project="acme",
        module="chat",
        environment="development",
        path=path,
        content_length=len(raw),
        max_body=1 << 20,
    )


class Recorder:
    """An ASGI `send` that keeps what it was given."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])


class Served(Recorder):
    """The server's side of one request, as fd2's core is: the route's steps' headers added
    to the answer (`request.answer_headers`), its status kept on the request."""

    def __init__(self, request: Request) -> None:
        super().__init__()
        self.request = request

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.request.status = message["status"]
            headers = [*message.get("headers", ()), *self.request.answer_headers]
            message = {**message, "headers": headers}
        await super().__call__(message)


class Answering:
    """A module handler: answers 200 (or `status`) and reports `usage` when given one."""

    def __init__(self, status: int = 200, usage: Usage | None = None) -> None:
        self.status = status
        self.usage = usage
        self.seen: list[Request] = []

    async def __call__(self, request: Request, send: Any) -> None:
        self.seen.append(request)
        if self.usage is not None:
            request.report_usage(self.usage)
        await send_bytes(send, self.status, b"{}")


class FixedMeter:
    """A module's meter with a known answer (the real OpenAI one is tested with its module)."""

    def __init__(self, model: str | None = "m", prompt: int = 10, bound: int = 20) -> None:
        self.cost = Cost(model=model, prompt_tokens=prompt, completion_bound=bound)
        self.estimates = 0

    async def model(self, request: Request) -> str | None:
        return self.cost.model

    async def estimate(self, request: Request) -> Cost:
        self.estimates += 1
        return self.cost
