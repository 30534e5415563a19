"""Webhook signatures against the `standardwebhooks` package (an implementation not ours), the
secret's form, and the retry back-off."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook

from fd2.control.secrets import Secret
from fd2.jobs.webhooks import backoff_s, sign, signing_key
from fd2.serving.errors import ConfigError

KEY = b"unit-test-webhook-key-0123456789"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def test_a_signature_verifies_with_the_reference_implementation() -> None:
    body = b'{"type":"job.succeeded","data":{"job_id":"job_1"}}'
    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_job_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(signing_key(Secret(SECRET)), "msg_job_1", timestamp, body),
    }
    assert Webhook(SECRET).verify(body, headers) == {
        "type": "job.succeeded",
        "data": {"job_id": "job_1"},
    }


def test_the_signature_is_the_reference_ones() -> None:
    from datetime import UTC, datetime

    timestamp = 1_700_000_000
    expected = Webhook(SECRET).sign("msg_x", datetime.fromtimestamp(timestamp, UTC), "{}")
    assert sign(KEY, "msg_x", timestamp, b"{}") == expected


@pytest.mark.parametrize(
    "value",
    [
        "plain-secret-without-prefix-0123456789",
        "whsec_not base64!!",
        "whsec_" + base64.b64encode(b"short").decode(),
    ],
)
def test_a_secret_of_another_form_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        signing_key(Secret(value))
    assert value not in caught.value.message


def test_the_back_off_doubles_with_jitter_up_to_its_cap() -> None:
    for attempt, ceiling in ((1, 5.0), (2, 10.0), (3, 20.0)):
        for _ in range(50):
            assert ceiling / 2 <= backoff_s(attempt, 5.0, 3600.0) <= ceiling
    assert backoff_s(40, 5.0, 3600.0) <= 3600.0
