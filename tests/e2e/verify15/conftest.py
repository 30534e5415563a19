"""The jobs tests' fixtures (a redis-server of the test's own, fd2 with jobs on two projects)
reused by the independent review's tests."""

from __future__ import annotations

from ..jobs.conftest import gateway, redis_server

__all__ = ["gateway", "redis_server"]
