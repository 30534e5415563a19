"""How a workflow run fails, each with the status its caller gets (rendered by fd2's core)."""

from __future__ import annotations

from fd2.serving.errors import Fd2Error, UpstreamError, UpstreamTimeout


class NodeFailed(UpstreamError):
    """502: a node could not produce its result (its model call failed after its retries, or
    what it was given could not be used). The message names the node."""

    code = "workflow_node_failed"

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"workflow node {node!r} failed: {message}")
        self.node = node


class TooManyItems(Fd2Error):
    """400: a parallel node was given more items than its `max_items` (one model call each):
    the input is too large for this workflow, not a failure of it."""

    status = 400
    error_type = "invalid_request_error"
    code = "too_many_items"

    def __init__(self, node: str, count: int, limit: int) -> None:
        super().__init__(
            f"workflow node {node!r} would make {count} model calls; at most {limit} are "
            "allowed (the node's max_items): send a smaller input"
        )


class NodeRateLimited(Fd2Error):
    """429: the inference module a node calls refused for its rate limits, after the retries.
    The caller's quota, not the workflow's fault: it may try again later."""

    status = 429
    error_type = "requests"
    code = "rate_limit_exceeded"


class NodeRefused(Fd2Error):
    """401: the inference module did not accept the caller's credentials."""

    status = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class NodeForbidden(Fd2Error):
    """403: the caller's credentials do not allow the model call a node makes."""

    status = 403
    error_type = "invalid_request_error"
    code = "permission_denied"


class NodeTimedOut(UpstreamTimeout):
    """504: a node's model call timed out upstream, after the retries."""

    code = "workflow_node_timeout"


class WorkflowTimeout(UpstreamTimeout):
    """504: the whole run took longer than `timeout_seconds`."""

    code = "workflow_timeout"


class IterationsExceeded(Fd2Error):
    """500: a node would run more than `max_iterations` times in one run (a cycle that did not
    end): the workflow's definition, not the caller, is at fault."""

    status = 500
    error_type = "server_error"
    code = "workflow_max_iterations"
