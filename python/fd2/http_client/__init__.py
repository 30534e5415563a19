"""fd2's upstream HTTP/1.1 client: pooled keep-alive connections on asyncio protocols, responses
parsed by httptools (the C parser uvicorn uses). Leaner per request than aiohttp's client, whose
own cost was most of a relayed request's in `make bench` (floor-relay against floor-fixed)."""

from fd2.http_client.errors import ConnectFailed, ResponseFailed, UpstreamClosed
from fd2.http_client.pool import ConnectionPool, Origin
from fd2.http_client.response import Response

__all__ = [
    "ConnectFailed",
    "ConnectionPool",
    "Origin",
    "Response",
    "ResponseFailed",
    "UpstreamClosed",
]
