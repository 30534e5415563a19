"""fd2.http_client against real sockets: a small asyncio HTTP server that answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest

from fd2.http_client import (
    ConnectFailed,
    ConnectionPool,
    ConnectTimeout,
    Origin,
    ReadTimeout,
    ResponseFailed,
    UpstreamClosed,
    header_lines,
)

Handler = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]
"""Answers one request (its head given); returns whether to keep the connection open."""


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                while (head := await _read_request(reader)) is not None:
                    self.requests.append(head)
                    if not await self.handler(head, reader, writer):
                        break
            finally:
                writer.close()

        self._server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def origin(self) -> Origin:
        return Origin.of(f"http://127.0.0.1:{self.port}/v1")


def _answer(body: bytes, status: int = 200, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        extra,
        body,
    )


async def _fixed(head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    writer.write(_answer(b'{"ok":true}'))
    await writer.drain()
    return True


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool()
    yield pool
    await pool.close()


async def _post(pool: ConnectionPool, origin: Origin, body: bytes = b"{}") -> bytes:
    answer = await pool.request(
        origin, b"POST", "/chat", [("x-a", "1")], body, connect_timeout_s=2, read_timeout_s=2
    )
    try:
        return await answer.read(1 << 20, 2)
    finally:
        answer.release()


async def test_the_content_length_is_noted_as_it_arrives(pool: ConnectionPool) -> None:
    async with Server(_fixed) as server:
        answer = await pool.request(
            server.origin, b"POST", "/v1/chat", [], b"{}", connect_timeout_s=2, read_timeout_s=2
        )
        assert answer.length == answer.header(b"content-length") == b"11"
        assert await answer.read(100, 2) == b'{"ok":true}'
        answer.release()


async def test_prerendered_header_lines_go_out_as_given(pool: ConnectionPool) -> None:
    async with Server(_fixed) as server:
        answer = await pool.request(
            server.origin,
            b"POST",
            "/v1/chat",
            header_lines([("x-a", "1"), ("x-b", "2")]),
            b"{}",
            connect_timeout_s=2,
            read_timeout_s=2,
        )
        assert await answer.read(100, 2) == b'{"ok":true}'
        answer.release()
    assert server.requests[0].endswith(b"\r\nx-a: 1\r\nx-b: 2\r\ncontent-length: 2\r\n\r\n")


async def test_a_request_goes_out_as_written_and_connections_are_reused(
    pool: ConnectionPool,
) -> None:
    async with Server(_fixed) as server:
        for _ in range(5):
            assert await _post(pool, server.origin, b'{"a":1}') == b'{"ok":true}'
    assert server.connections == 1
    head = server.requests[0].decode()
    assert head.startswith("POST /v1/chat HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{server.port}\r\n" in head
    assert "x-a: 1\r\n" in head and "content-length: 7\r\n" in head


async def test_chunked_answers_arrive_piece_by_piece(pool: ConnectionPool) -> None:
    release = asyncio.Event()

    async def chunked(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        w.write(b"transfer-encoding: chunked\r\n\r\n")
        w.write(b"6\r\ndata: \r\n")
        await w.drain()
        await release.wait()
        w.write(b"3\r\nabc\r\n0\r\n\r\n")
        await w.drain()
        return True

    async with Server(chunked) as server:
        answer = await pool.request(
            server.origin, b"POST", "/s", [], b"{}", connect_timeout_s=2, read_timeout_s=2
        )
        assert answer.status == 200 and answer.header(b"content-type") == b"text/event-stream"
        assert answer.length is None  # chunked: no Content-Length
        pieces = answer.iter_chunks(2)
        assert await anext(pieces) == b"data: "  # before the rest was even written
        release.set()
        assert [piece async for piece in pieces] == [b"abc"]
        answer.release()
    assert server.connections == 1


async def test_next_chunk_reads_piece_by_piece_and_times_out_between_pieces(
    pool: ConnectionPool,
) -> None:
    """Each wait bounded on its own (a stream whose pieces keep coming in time is not cut by
    their sum)."""

    async def slow(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        w.write(b"transfer-encoding: chunked\r\n\r\n")
        for piece in (b"a", b"b", b"c"):
            await asyncio.sleep(0.2)  # 0.6 s in all, each within the 0.5 s read limit
            w.write(b"1\r\n" + piece + b"\r\n")
            await w.drain()
        if head.startswith(b"POST /v1/stall"):
            await asyncio.sleep(5)
        w.write(b"0\r\n\r\n")
        await w.drain()
        return True

    async with Server(slow) as server:
        for path, stalls in (("/whole", False), ("/stall", True)):
            answer = await pool.request(
                server.origin, b"POST", path, [], b"{}", connect_timeout_s=2, read_timeout_s=2
            )
            read = partial(answer.next_chunk, 0.5)
            assert [await read(), await read(), await read()] == [b"a", b"b", b"c"]
            if stalls:
                with pytest.raises(ReadTimeout):
                    await read()
                answer.close()
            else:
                assert await read() is None
                answer.release()


async def test_a_stale_keep_alive_connection_is_retried_on_a_new_one(pool: ConnectionPool) -> None:
    async def once(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(_answer(b"{}"))
        await w.drain()
        return False  # closes after each answer, without saying so

    async with Server(once) as server:
        assert await _post(pool, server.origin) == b"{}"
        await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert await _post(pool, server.origin) == b"{}"
    assert server.connections == 2


async def test_a_connection_that_closes_before_answering_a_fresh_request_fails(
    pool: ConnectionPool,
) -> None:
    async def drop(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        return False

    async with Server(drop) as server:
        with pytest.raises(UpstreamClosed) as closed:
            await _post(pool, server.origin)
    assert closed.value.reused is False and server.connections == 1  # never sent twice


async def test_refused_connections_and_cut_bodies_say_what_happened(pool: ConnectionPool) -> None:
    with pytest.raises(ConnectFailed):
        await _post(pool, Origin.of("http://127.0.0.1:9"))

    async def cut(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await w.drain()
        return False

    async with Server(cut) as server:
        with pytest.raises(ResponseFailed):
            await _post(pool, server.origin)


async def test_a_silent_upstream_times_out(pool: ConnectionPool) -> None:
    async def silent(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with Server(silent) as server:
        with pytest.raises(TimeoutError):
            await pool.request(
                server.origin, b"GET", "/x", [], None, connect_timeout_s=1, read_timeout_s=0.2
            )


async def test_header_values_with_line_breaks_are_refused(pool: ConnectionPool) -> None:
    async with Server(_fixed) as server:
        with pytest.raises(ValueError):
            await pool.request(
                server.origin, b"GET", "/x", [("x-a", "1\r\nx-b: 2")], None,
                connect_timeout_s=1, read_timeout_s=1,
            )  # fmt: skip
    assert server.requests == []


async def test_an_answer_larger_than_the_limit_is_refused(pool: ConnectionPool) -> None:
    async with Server(_fixed) as server:
        answer = await pool.request(
            server.origin, b"GET", "/x", [], None, connect_timeout_s=1, read_timeout_s=1
        )
        with pytest.raises(ResponseFailed):
            await answer.read(3, 1)
        answer.close()


async def test_the_connection_cap_holds_a_request_until_a_connection_comes_free() -> None:
    release = asyncio.Event()

    async def slow(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await release.wait()
        w.write(_answer(b"{}"))
        await w.drain()
        return True

    capped = ConnectionPool(max_connections=2)
    try:
        async with Server(slow) as server:
            calls = [asyncio.create_task(_post(capped, server.origin)) for _ in range(3)]
            await asyncio.sleep(0.1)
            assert capped.open_connections == 2 and server.connections == 2  # the third waits
            release.set()
            assert await asyncio.gather(*calls) == [b"{}"] * 3
            assert server.connections == 2  # it took a connection that came back idle
            release.clear()
            with pytest.raises(ConnectTimeout):  # both busy, none comes free in time
                busy = [asyncio.create_task(_post(capped, server.origin)) for _ in range(2)]
                await asyncio.sleep(0.05)
                await capped.request(
                    server.origin, b"GET", "/x", [], None, connect_timeout_s=0.1, read_timeout_s=1
                )
            release.set()
            await asyncio.gather(*busy)
    finally:
        await capped.close()


async def test_timeouts_are_told_apart_and_targets_are_never_sent_raw(pool: ConnectionPool) -> None:
    async def silent(head: bytes, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with Server(silent) as server:
        with pytest.raises(ReadTimeout):
            await pool.request(
                server.origin, b"GET", "/a b\r\nx", [], None, connect_timeout_s=1,
                read_timeout_s=0.2,
            )  # fmt: skip
    assert server.requests[0].startswith(b"GET /v1/a%20b%0D%0Ax HTTP/1.1\r\n")
