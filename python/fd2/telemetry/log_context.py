"""The request a log line is about: its request id and trace id, for JSON log lines.

Set by the core's dispatch for the request's task (and the tasks it starts, which copy the
context) only when JSON logs are on; text logs name the request in their messages already.
The trace id is the W3C trace context's (`traceparent`): the client's, or the span's when
tracing is on.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Final

REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("fd2_request_id", default=None)
TRACE_ID: Final[ContextVar[str | None]] = ContextVar("fd2_trace_id", default=None)

# W3C Trace Context 3.2: version "00", 32 hex trace id (not all zeros), 16 hex parent id, flags.
_TRACEPARENT: Final = re.compile(rb"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_NO_TRACE: Final = "0" * 32


def trace_id_from(traceparent: bytes | None) -> str | None:
    """The trace id of a client's `traceparent` header, or None when it is absent or invalid
    (an invalid one is ignored, as the specification says: never echoed into a log)."""
    if traceparent is None:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    if match is None or traceparent.startswith(b"ff"):
        return None
    trace_id = match.group(1).decode("ascii")
    return None if trace_id == _NO_TRACE else trace_id
