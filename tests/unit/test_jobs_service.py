"""What the job machinery adds to a route: its endpoints, which of the module's endpoints a job
may run, and the webhook secret's checks (no Redis needed: the endpoints then answer 503)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from fd2.control.route_table import EMPTY_TABLE
from fd2.control.secrets import Secret, SecretResolver
from fd2.jobs.service import JobService, job_endpoints
from fd2.jobs.settings import JobSettings
from fd2.serving.errors import ConfigError

GOOD = "whsec_" + base64.b64encode(b"k" * 32).decode()


async def _h(*_: Any) -> None: ...


HANDLERS = {
    "/v1/chat/completions": {"POST": _h},
    "/v1/models": {"GET": _h},
    "/v1/files": {"GET": _h},  # the module's own wins over the job machinery's
}


def _endpoints(config: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    service = JobService(JobSettings(), None, lambda: EMPTY_TABLE)
    handlers = service.endpoints(
        project="p",
        module="m",
        environment="dev",
        handlers=HANDLERS,
        steps=None,
        config=config,
        secrets=SecretResolver(environ=environ or {}),
    )
    return service, handlers


def test_the_job_endpoints_are_added_and_the_modules_own_win() -> None:
    _, handlers = _endpoints({})
    assert set(handlers) >= {"/v1/jobs", "/v1/jobs/*", "/v1/batches", "/v1/batches/*"}
    assert handlers["/v1/files"] is HANDLERS["/v1/files"]
    assert handlers["/v1/chat/completions"] is HANDLERS["/v1/chat/completions"]


def test_jobs_may_run_the_modules_post_endpoints_only() -> None:
    assert job_endpoints(HANDLERS) == frozenset({"/v1/chat/completions"})
    # A route with a webhook secret is remembered with them.
    service, _ = _endpoints({"jobs": {"webhook_secret": "env:HOOK"}}, {"HOOK": GOOD})
    assert service._routes[("p", "m", "dev")].endpoints == frozenset({"/v1/chat/completions"})


def test_a_route_without_a_webhook_secret_forgets_an_earlier_one() -> None:
    service, _ = _endpoints({"jobs": {"webhook_secret": "env:HOOK"}}, {"HOOK": GOOD})
    service.endpoints(
        project="p",
        module="m",
        environment="dev",
        handlers=HANDLERS,
        steps=None,
        config={},
        secrets=SecretResolver(environ={}),
    )
    assert service._secret("p", "m", "dev") is None


def test_the_webhook_secret_is_read_by_reference() -> None:
    service, _ = _endpoints({"jobs": {"webhook_secret": "env:HOOK"}}, {"HOOK": GOOD})
    assert service._secret("p", "m", "dev") == Secret(GOOD)
    assert service._secret("p", "other", "dev") is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"jobs": {"webhook_secret": GOOD}}, "must be a secret reference"),
        ({"jobs": {"webhook_secret": "env:HOOK"}}, "whsec_"),
        ({"jobs": "yes"}, "must be an object"),
    ],
)
def test_a_webhook_secret_that_cannot_be_used_is_a_config_error(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _endpoints(config, {"HOOK": "not-a-whsec-value-0123456789"})
    assert GOOD not in caught.value.message
    assert "not-a-whsec-value" not in caught.value.message


async def test_without_redis_the_endpoints_answer_503() -> None:
    service, _ = _endpoints({})
    with pytest.raises(Exception, match="--redis-url") as caught:
        service.require_store()
    assert getattr(caught.value, "status", None) == 503


def test_an_operator_may_turn_jobs_off_for_a_module() -> None:
    service, handlers = _endpoints({"jobs": {"enabled": False}})
    assert handlers == HANDLERS
    assert ("p", "m", "dev") not in service._routes
