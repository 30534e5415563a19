"""What can go wrong talking to an upstream, split by whether the request may have reached it."""

from __future__ import annotations


class ClientError(Exception):
    """Base of the client's errors."""


class ConnectFailed(ClientError):
    """No connection could be made (refused, DNS, TLS, connect timeout): the upstream never saw
    the request, so sending it elsewhere cannot run it twice."""


class UpstreamClosed(ClientError):
    """The connection closed before any byte of the answer. On a reused keep-alive connection
    this is the upstream having closed an idle connection as the request went out: `sent` says
    whether the request may have been read (False: it certainly was not)."""

    def __init__(self, message: str, *, reused: bool) -> None:
        super().__init__(message)
        self.reused = reused


class ResponseFailed(ClientError):
    """The answer broke off after it started (reset, malformed HTTP, a cut body)."""
