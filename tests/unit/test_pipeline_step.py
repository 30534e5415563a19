"""fd2.pipeline.compose: steps bound to the next once, in order; no steps, the handler itself."""

from __future__ import annotations

from typing import Any

from pipeline_support import Answering, Recorder, make_request

from fd2.pipeline import compose


class Tag:
    """A step that records its name before and after the rest, and marks the answer."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def __call__(self, request: Any, send: Any, call_next: Any) -> None:
        self.log.append(f"{self.name}>")

        async def marked(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-step", self.name.encode())]
            await send(message)

        await call_next(request, marked)
        self.log.append(f"<{self.name}")


class Refuse:
    async def __call__(self, request: Any, send: Any, call_next: Any) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_no_steps_is_the_handler_itself() -> None:
    handler = Answering()
    assert compose([], handler) is handler


async def test_steps_run_in_order_around_the_handler() -> None:
    log: list[str] = []
    handler = Answering()
    composed = compose([Tag("a", log), Tag("b", log)], handler)
    send = Recorder()
    await composed(make_request({}), send)
    assert log == ["a>", "b>", "<b", "<a"]
    assert send.status == 200 and len(handler.seen) == 1
    assert [value for name, value in send.messages[0]["headers"] if name == b"x-step"] == [
        b"b",
        b"a",
    ]


async def test_a_step_may_answer_instead_of_calling_the_rest() -> None:
    handler = Answering()
    send = Recorder()
    await compose([Refuse(), Tag("never", [])], handler)(make_request({}), send)
    assert send.status == 418 and not handler.seen
