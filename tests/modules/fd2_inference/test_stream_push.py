"""A stream's body pushed from the pooled connection's callbacks (`relay_pushed`), against a real
loopback upstream that writes the pieces when the test says: order, a `send` that has to wait
(pieces held in order, the upstream paused, the time limit held), the end after what is held,
failures, cancellation and the request's context in `send`."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fd2.http_client import ConnectionPool, Origin, ReadTimeout, Response, ResponseFailed
from fd2_inference.stream_push import relay_pushed

_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("_REQUEST", default="")


class Upstream:
    """Answers each request with a chunked `text/event-stream` head, then writes what is put
    in `pieces` (bytes: one chunk; None: the body's end; "cut": the connection dropped)."""

    def __init__(self) -> None:
        self.pieces: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        while True:
            piece = await self.pieces.get()
            if piece == "cut":
                writer.transport.abort()
                return
            if piece is None:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return
            assert isinstance(piece, bytes)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()

    async def answer(self, pool: ConnectionPool) -> Response:
        return await pool.request(
            Origin.of(f"http://127.0.0.1:{self.port}/v1"),
            b"POST",
            "/chat/completions",
            [],
            b"{}",
            connect_timeout_s=2,
            read_timeout_s=2,
        )


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    yield server
    listening.close()


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    made = ConnectionPool()
    yield made
    await made.close()


class Client:
    """The server's `send`: records each body, in a task or not; `hold` makes the next sends
    wait until `release`."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.in_task: list[bool] = []
        self.contexts: list[str] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.left_early = False

    def hold(self) -> None:
        self.gate = asyncio.Event()

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()
        self.gate = None

    async def send(self, message: dict[str, Any]) -> None:
        self.in_task.append(asyncio.current_task() is not None)
        self.contexts.append(_REQUEST.get())
        gate = self.gate
        if gate is not None:
            self.entered.set()
            try:
                await gate.wait()
            except GeneratorExit:
                self.left_early = True
                raise
        self.bodies.append(message["body"])


def upper(piece: bytes) -> bytes:
    return piece.upper()


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _start(
    answer: Response, client: Client, read_s: float = 2.0, framed: Any = upper, head: bytes = b""
) -> asyncio.Task[None]:
    async def relay() -> None:
        _REQUEST.set("request-1")
        await relay_pushed(answer, framed, client.send, read_s, head)

    return asyncio.ensure_future(relay())


async def _opened(
    upstream: Upstream, pool: ConnectionPool, *, hold: bool = False, **options: Any
) -> tuple[Response, Client, asyncio.Task[None]]:
    """An answer from `upstream`, a client (its sends waiting from the start with `hold`), and
    the relay between them, started."""
    answer = await upstream.answer(pool)
    client = Client()
    if hold:
        client.hold()
    return answer, client, _start(answer, client, **options)


async def test_pieces_go_out_in_order_from_the_connections_callbacks(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    answer, client, relay = await _opened(upstream, pool, head=b"h")
    for piece in (b"a", b"b", b"c"):
        await upstream.pieces.put(piece)
        sent = len(client.bodies)
        await _until(lambda: len(client.bodies) > sent, "the piece")  # noqa: B023 - awaited here
    await upstream.pieces.put(None)
    await asyncio.wait_for(relay, 2)
    assert client.bodies == [b"H", b"A", b"B", b"C"]
    # The head from the task; every piece after it from a protocol callback, in the request's
    # context all the same.
    assert client.in_task == [True, False, False, False]
    assert client.contexts == ["request-1"] * 4
    assert answer.complete
    answer.release()


async def test_a_send_that_waits_holds_the_pieces_in_order_and_pauses_the_upstream(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    answer, client, relay = await _opened(upstream, pool, read_s=0.3)
    await upstream.pieces.put(b"first")
    await _until(lambda: client.bodies == [b"FIRST"], "the first piece")
    client.hold()
    await upstream.pieces.put(b"second")  # its send waits
    await asyncio.wait_for(client.entered.wait(), 2)
    big = [bytes([ord("a") + index]) * (100 * 1024) for index in range(4)]
    for piece in big:  # 400 KiB behind the waiting send: past the hold-back mark
        await upstream.pieces.put(piece)
    transport = answer._connection._transport  # the pause is what is tested
    assert transport is not None
    await _until(lambda: not transport.is_reading(), "the upstream to be paused")
    await asyncio.sleep(0.5)  # longer than read_s: the wait is the client's, not a timeout
    assert not relay.done()
    await upstream.pieces.put(None)
    client.release()
    await asyncio.wait_for(relay, 2)
    # (a 100 KiB chunk may come in more than one read)
    assert b"".join(client.bodies) == b"FIRSTSECOND" + b"".join(piece.upper() for piece in big)
    answer.release()


async def test_the_body_ends_after_the_pieces_held_behind_a_waiting_send(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    answer, client, relay = await _opened(upstream, pool, hold=True)
    for piece in (b"x", b"y", None):
        await upstream.pieces.put(piece)
    await asyncio.wait_for(client.entered.wait(), 2)
    await _until(lambda: answer.complete, "the whole body to arrive")
    await asyncio.sleep(0.05)
    assert not relay.done()  # ended upstream, not yet sent
    client.release()
    await asyncio.wait_for(relay, 2)
    assert client.bodies == [b"X", b"Y"]


async def test_what_framing_raises_ends_the_relay_and_nothing_more_is_sent(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    answer = await upstream.answer(pool)
    client = Client()

    def refuses_b(piece: bytes) -> bytes:
        if piece == b"b":
            raise ValueError("not an event stream")
        return piece

    relay = _start(answer, client, framed=refuses_b)
    for piece in (b"a", b"b", b"c"):
        await upstream.pieces.put(piece)
    with pytest.raises(ValueError, match="not an event stream"):
        await asyncio.wait_for(relay, 2)
    await asyncio.sleep(0.05)
    assert client.bodies == [b"a"]
    answer.close()


async def test_nothing_for_the_time_limit_is_a_read_timeout(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    answer, client, relay = await _opened(upstream, pool, read_s=0.3)
    for _ in range(3):  # 0.6 s in all, each piece within the limit: the limit moves on
        await asyncio.sleep(0.2)
        await upstream.pieces.put(b"p")
    with pytest.raises(ReadTimeout):
        await asyncio.wait_for(relay, 2)
    assert client.bodies == [b"P"] * 3
    answer.close()


async def test_a_connection_that_breaks_off_fails_the_relay(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    _, client, relay = await _opened(upstream, pool)
    await upstream.pieces.put(b"a")
    await upstream.pieces.put("cut")
    with pytest.raises(ResponseFailed):
        await asyncio.wait_for(relay, 2)
    assert client.bodies == [b"A"]


async def test_a_cancelled_relay_closes_its_waiting_send_and_takes_nothing_more(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    answer, client, relay = await _opened(upstream, pool, hold=True)
    await upstream.pieces.put(b"a")
    await asyncio.wait_for(client.entered.wait(), 2)
    relay.cancel()
    with pytest.raises(asyncio.CancelledError):
        await relay
    assert client.left_early  # the waiting send was closed, its `finally` run
    calls = len(client.in_task)
    await upstream.pieces.put(b"b")
    await asyncio.sleep(0.05)
    assert len(client.in_task) == calls and client.bodies == []
    answer.close()


async def test_a_body_already_here_is_relayed_from_the_task(
    upstream: Upstream, pool: ConnectionPool
) -> None:
    answer = await upstream.answer(pool)
    for piece in (b"a", b"b", None):
        await upstream.pieces.put(piece)
    await _until(lambda: answer.complete, "the whole body to arrive")
    client = Client()
    await asyncio.wait_for(_start(answer, client), 2)
    assert client.bodies == [b"A", b"B"] and client.in_task == [True, True]
    answer.release()
