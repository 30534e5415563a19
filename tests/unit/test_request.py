"""The request body's deadline (from the first receive) and what a cut body becomes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from fd2.serving.errors import IncompleteBody, RequestTimeout
from fd2.serving.request import Request


def make(receive: Any, timeout: float = 0.3) -> Request:
    return Request(
        {"method": "POST", "headers": []},
        receive,
        request_id="r",
        project="p",
        module="m",
        environment="e",
        path="/v1/chat/completions",
        content_length=None,
        max_body=1000,
        body_timeout=timeout,
    )


async def test_a_body_that_never_starts_times_out() -> None:
    async def never() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError

    began = time.monotonic()
    with pytest.raises(RequestTimeout):
        await make(never).body()
    assert 0.3 <= time.monotonic() - began < 0.6


async def test_a_body_that_stalls_after_its_first_piece_times_out() -> None:
    sent = False

    async def once() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError

    with pytest.raises(RequestTimeout):
        await make(once).body()


async def test_a_body_in_pieces_within_the_deadline_is_read() -> None:
    pieces = [b'{"a"', b": 1}", b""]

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.05)
        body = pieces.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pieces)}

    request = make(receive)
    assert await request.body() == b'{"a": 1}'
    assert await request.json_object() == {"a": 1}


async def test_a_cut_body_is_a_400() -> None:
    async def cut() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    with pytest.raises(IncompleteBody):
        await make(cut).body()


async def test_other_cancellations_are_not_taken_for_a_late_body() -> None:
    async def never() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError

    task = asyncio.ensure_future(make(never, timeout=5).body())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
