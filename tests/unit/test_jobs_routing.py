"""Paths with an id below a pattern endpoint (`/v1/jobs/*`) find it; exact paths win."""

from __future__ import annotations

from typing import Any

import pytest

from fd2.control.route_table import Route
from fd2.serving.app import _handler
from fd2.serving.errors import MethodNotAllowed, NotFound
from fd2.serving.routing import RouteKey


async def _a(*_: Any) -> None: ...


async def _b(*_: Any) -> None: ...


ROUTE = Route(
    project="p",
    module="m",
    environment="dev",
    loaded=None,
    handlers={
        "/v1/jobs": {"POST": _a},
        "/v1/jobs/*": {"GET": _b},
        "/v1/files/*": {"GET": _b},
        "/v1/chat/completions": {"POST": _a},
    },
)


@pytest.mark.parametrize(
    ("path", "method", "endpoint"),
    [
        ("/v1/jobs", "POST", "/v1/jobs"),
        ("/v1/jobs/job_123", "GET", "/v1/jobs/*"),
        ("/v1/files/file_1/content", "GET", "/v1/files/*"),
        ("/v1/chat/completions", "POST", "/v1/chat/completions"),
    ],
)
def test_the_endpoint_is_the_path_or_its_pattern(path: str, method: str, endpoint: str) -> None:
    assert _handler(ROUTE, RouteKey("p", "m", path), method)[1] == endpoint


def test_no_pattern_no_route() -> None:
    with pytest.raises(NotFound):
        _handler(ROUTE, RouteKey("p", "m", "/v1/chat/completions/x"), "POST")
    with pytest.raises(NotFound):
        _handler(ROUTE, RouteKey("p", "m", "/v2/jobs/x"), "GET")
    with pytest.raises(MethodNotAllowed):
        _handler(ROUTE, RouteKey("p", "m", "/v1/jobs/x"), "PUT")
