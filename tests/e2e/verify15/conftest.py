"""The jobs and privacy tests' fixtures (a redis-server of the test's own, fd2 with jobs on two
projects; fd2 with redacting modules before an echoing upstream) reused by the independent
review's tests."""

from __future__ import annotations

from ..jobs.conftest import gateway, redis_server
from ..privacy.test_privacy import stack

__all__ = ["gateway", "redis_server", "stack"]
