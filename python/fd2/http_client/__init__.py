"""fd2's upstream HTTP/1.1 client: pooled keep-alive connections on asyncio protocols, responses
parsed by httptools (the C parser uvicorn uses). Leaner per request than aiohttp's client, whose
own cost was most of a relayed request's in `make bench` (floor-relay against floor-fixed)."""

from fd2.http_client.errors import (
    ClientError,
    ConnectFailed,
    ConnectTimeout,
    ReadTimeout,
    ResponseFailed,
    UpstreamClosed,
)
from fd2.http_client.pool import ConnectionPool, Origin, header_lines
from fd2.http_client.response import Response

__all__ = [
    "ClientError",
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionPool",
    "Origin",
    "ReadTimeout",
    "Response",
    "ResponseFailed",
    "UpstreamClosed",
    "header_lines",
]
