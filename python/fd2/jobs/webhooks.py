"""Webhook deliveries, signed as the Standard Webhooks specification says.

Headers `webhook-id` (the same on every retry of one message), `webhook-timestamp` (seconds,
this attempt's) and `webhook-signature`: `v1,` then the base64 HMAC-SHA256 of
`{id}.{timestamp}.{body}` under the project's secret (`whsec_` + base64 of the key bytes).
A delivery that fails (no 2xx answer in time) is retried after an exponential back-off with
jitter, and dead-lettered after `--webhook-max-attempts`; each attempt is recorded in the job.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import orjson

from fd2.control.secrets import Secret
from fd2.jobs import keys, ssrf
from fd2.jobs.records import job_view
from fd2.jobs.store import JobStore
from fd2.serving.errors import ConfigError, Fd2Error

_log = logging.getLogger("fd2.jobs.webhooks")
_KEPT_DELIVERIES: Final = 20
_DEAD_LETTERS_KEPT: Final = 10000
SECRET_PREFIX: Final = "whsec_"  # noqa: S105  # the form of a secret, not one

SecretLookup = Callable[[str, str, str], Secret | None]
"""(project, module, environment) → the signing secret of that route's webhooks."""


def signing_key(secret: Secret) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; ConfigError for any other form."""
    value = secret.reveal()
    if not value.startswith(SECRET_PREFIX):
        raise ConfigError("jobs.webhook_secret must have the form whsec_<base64 key>")
    try:
        key = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ConfigError("jobs.webhook_secret is not valid base64 after whsec_") from None
    if len(key) < 24:
        raise ConfigError("jobs.webhook_secret must hold at least 24 random bytes")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff_s(attempt: int, first_s: float, cap_s: float) -> float:
    """The wait before attempt `attempt + 1`: doubling from `first_s`, capped, with jitter."""
    return float(min(cap_s, first_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))  # noqa: S311


class WebhookSender:
    def __init__(
        self,
        store: JobStore,
        secrets: SecretLookup,
        ensure_project: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.settings = store.settings
        self._secrets = secrets
        self._ensure = ensure_project

    async def deliver(self, project: str, job_id: str) -> None:
        store = self.store
        record = await store.get(project, job_id)
        if record is None or not record.get("webhook"):
            return
        if record.get("webhook_status") in ("delivered", "dead_lettered"):
            return  # this message was handled already (at-least-once)
        key = keys.job(project, job_id)
        attempt = int(await store.redis.hincrby(key, "webhook_attempts", 1))
        url = orjson.loads(record["webhook"])["url"]
        delivery: dict[str, Any] = {"attempt": attempt, "at": int(time.time())}
        ok = False
        try:
            code = await self._post(record, url)
            delivery["status_code"] = code
            ok = 200 <= code < 300
        except ssrf.Refused as exc:
            delivery["error"] = str(exc)
        except ConfigError as exc:
            delivery["error"] = exc.message
        except (aiohttp.ClientError, TimeoutError) as exc:
            delivery["error"] = f"delivery failed: {type(exc).__name__}"
        deliveries = orjson.loads(record.get("deliveries") or "[]")
        deliveries = [*deliveries, delivery][-_KEPT_DELIVERIES:]
        if ok:
            status = "delivered"
        elif attempt < self.settings.webhook_max_attempts:
            status = "retrying"
        else:
            status = "dead_lettered"
        await store.redis.hset(
            key, mapping={"deliveries": orjson.dumps(deliveries), "webhook_status": status}
        )
        store.counters.deliveries[status] += 1
        if status == "retrying":
            delay = backoff_s(
                attempt, self.settings.webhook_backoff_s, self.settings.webhook_backoff_cap_s
            )
            await store.later("deliver", project, job_id, delay)
        elif status == "dead_lettered":
            _log.warning("job %s: webhook dead-lettered after %d attempts", job_id, attempt)
            await store.redis.xadd(
                keys.DEAD,
                {"project": project, "id": job_id, "attempts": attempt},
                maxlen=_DEAD_LETTERS_KEPT,
                approximate=True,
            )

    async def _post(self, record: dict[str, str], url: str) -> int:
        with contextlib.suppress(Fd2Error):  # no route, no secret: said below
            await self._ensure(record["project"])  # its routes hold the signing secret
        secret = self._secrets(record["project"], record["module"], record["environment"])
        if secret is None:
            raise ConfigError("No webhook signing secret is configured for this module.")
        key = signing_key(secret)
        target = await ssrf.check(url, self.settings)
        timestamp = int(time.time())
        body = orjson.dumps(
            {
                "type": f"job.{record['status']}",
                "timestamp": datetime.fromtimestamp(timestamp, UTC).isoformat(),
                "data": job_view(record),
            }
        )
        message_id = f"msg_{record['id']}"
        headers = {
            "content-type": "application/json",
            "user-agent": "fd2-webhooks",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, message_id, timestamp, body),
        }
        async with (
            ssrf.pinned_session(target, self.settings.webhook_timeout_s) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            await response.content.read(4096)  # the answer itself means nothing
            return response.status
