"""Calls to a service of the RAG devkit (its RAG service or its model server) and its answers.

Both services are FastAPI apps with the same error shapes: `{"error": <text>, "detail": <text>,
"timestamp": ...}` (the RAG service's handler), `{"detail": <text>}` (the model server, FastAPI's
default) and `{"detail": [{"loc", "msg", "type", ...}]}` for a body that fails validation (422).
fd2 answers every one of them in OpenAI's error shape: a refusal (4xx) keeps its status and the
service's own words (with any credential fd2 sent taken out); a failure (5xx) becomes a 502 that
names only the status, since the devkit puts exception texts in its 500 details.

Retries are bounded by the module's `max_retries` and only where a second attempt cannot run a
request twice: a connection that was never made, always; an answer of 502/503/504 (a proxy in
front of the service, or the service starting up) only for calls that change nothing and cost
nothing to repeat (`idempotent`). A call that timed out is never retried: the service may still
be working on it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

import aiohttp
import orjson

from fd2.serving.errors import Fd2Error, UpstreamError, UpstreamTimeout
from fd2.telemetry.scrub import Scrubber, credential_values
from fd2_inference.answers import ERROR_BODY_LIMIT
from fd2_inference.upstream import NOT_SENT, UpstreamCall, read_answer

_RETRIED_STATUSES: Final = frozenset({502, 503, 504})
_BACKOFF_S: Final = 0.05
_MESSAGE_LIMIT: Final = 500


class ServiceRefused(Fd2Error):
    """The devkit service refused the request (4xx): its status and words, OpenAI-shaped."""

    error_type = "invalid_request_error"

    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, code=_REFUSAL_CODES.get(status, "upstream_refused"))
        self.status = status  # type: ignore[misc]  # per-instance status: the service's own


_REFUSAL_CODES: Final = {
    400: "invalid_request",
    401: "upstream_unauthorized",
    403: "upstream_forbidden",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit_exceeded",
}


class Answer(NamedTuple):
    """A success: the body as the service sent it, and its decoded value."""

    body: bytes
    value: Any


class DevkitService:
    """One devkit service: its base URL, time limit and retries. Implements the inference
    module's `Opens` protocol, so its stream relay can carry a devkit event stream too."""

    __slots__ = ("_base", "_label", "_retries", "_session", "_timeout", "total_s")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        label: str,
        request_timeout_s: float,
        connect_s: float,
        max_retries: int,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._label = label
        self._retries = max_retries
        # request_timeout (the Control Tower's field) bounds the whole call, its retries and the
        # reading of the answer included; connecting has the gateway's own limit within it.
        self.total_s = float(request_timeout_s)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=min(connect_s, self.total_s), sock_connect=connect_s
        )

    @property
    def label(self) -> str:
        return self._label

    def build(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        request_id: str,
        authorization: str | None = None,
        stream: bool = False,
    ) -> UpstreamCall:
        """A call to `base + path`: only these headers go to the service, never the caller's."""
        headers = {
            "accept": "text/event-stream" if stream else "application/json",
            "x-request-id": request_id,
        }
        if body is not None:
            headers["content-type"] = "application/json"
        if authorization is not None:
            headers["authorization"] = authorization
        return UpstreamCall(method, path, body, headers)

    def scrubber(self, call: UpstreamCall) -> Scrubber:
        return DevkitScrubber(credential_values(call.headers), self._label)

    async def open(self, call: UpstreamCall) -> aiohttp.ClientResponse:
        """Send `call` for a relay (a stream), retrying only a connection that was never made.

        A refusal or failure is settled here, in the devkit's words, before the relay sees it:
        its errors are not OpenAI-shaped, and a relay would only name their status."""
        response = await self._open(call, idempotent=False)
        if 200 <= response.status < 300:
            return response
        try:
            body = await read_answer(response, ERROR_BODY_LIMIT)
        finally:
            response.close()
        self.settle(response.status, body, self.scrubber(call))
        raise UpstreamError(f"The {self._label} answered HTTP {response.status}.")

    async def _open(self, call: UpstreamCall, *, idempotent: bool) -> aiohttp.ClientResponse:
        attempt = 0
        while True:
            try:
                response = await self._session.request(
                    call.method,
                    self._base + call.path,
                    data=call.body,
                    headers=call.headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except NOT_SENT:
                if attempt >= self._retries:
                    raise
            else:
                if not (idempotent and response.status in _RETRIED_STATUSES) or (
                    attempt >= self._retries
                ):
                    return response
                response.release()
            attempt += 1
            await asyncio.sleep(_BACKOFF_S * 2 ** (attempt - 1))

    async def exchange(self, call: UpstreamCall, *, idempotent: bool) -> Answer:
        """The service's JSON answer to `call` (a success), or the Fd2Error that says why not."""
        try:
            async with asyncio.timeout(self.total_s):
                response = await self._open(call, idempotent=idempotent)
                try:
                    body = await read_answer(response, ERROR_BODY_LIMIT)
                finally:
                    response.close()
        except TimeoutError:
            raise UpstreamTimeout(
                f"The {self._label} did not answer within {self.total_s:g} s."
            ) from None
        except NOT_SENT:
            raise UpstreamError(
                f"The {self._label} could not be reached (connection failed)."
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"The {self._label} connection failed ({type(exc).__name__})."
            ) from None
        return self.settle(response.status, body, self.scrubber(call))

    def settle(self, status: int, body: bytes | None, scrubber: Scrubber) -> Answer:
        """A success's JSON (as sent, and decoded); otherwise the error to answer with."""
        if 200 <= status < 300:
            if body is None:
                raise UpstreamError(
                    f"The {self._label} answered HTTP {status} with a body too large to relay."
                )
            try:
                return Answer(body, orjson.loads(body))
            except orjson.JSONDecodeError:
                raise UpstreamError(
                    f"The {self._label} answered HTTP {status} with a body that is not JSON."
                ) from None
        if 400 <= status < 500:
            message, param = refusal_message(body)
            if message is None:
                message = f"The {self._label} refused the request (HTTP {status})."
            else:
                message = f"The {self._label} refused the request: " + scrubber.text(message)
            return_status = 400 if status == 422 else status
            raise ServiceRefused(return_status, message, param=param)
        raise UpstreamError(f"The {self._label} failed (HTTP {status}).")


class DevkitScrubber(Scrubber):
    """Credentials out of an answer, and the devkit's in-stream errors told as fd2 tells them.

    The devkit starts a streamed chat completion (200) before it answers, so every failure of
    one comes as an event `data: {"error": {"message": str(exception), ...}}`: a refusal reads
    `"401: <detail>"` (a FastAPI HTTPException), anything else is an exception's text, which fd2
    never relays from a devkit 5xx either. The first keeps its words; the second is named only.
    """

    __slots__ = ("_label",)

    def __init__(self, secrets: Iterable[str], label: str) -> None:
        super().__init__(secrets)
        self._label = label

    def events(self, data: bytes) -> bytes:
        if b'"error"' in data:
            data = b"".join(self._event_line(line) for line in data.splitlines(keepends=True))
        return super().events(data)

    def _event_line(self, line: bytes) -> bytes:
        content = line.rstrip(b"\r\n")
        if not content.startswith(b"data:"):
            return line
        try:
            value = orjson.loads(content[5:])
        except orjson.JSONDecodeError:
            return line
        error = value.get("error") if isinstance(value, dict) else None
        if not isinstance(error, dict):
            return line
        message = error.get("message")
        refusal = _REFUSAL.match(message) if isinstance(message, str) else None
        if refusal is not None:
            text = f"The {self._label} refused the request: {_short(refusal.group(2))}"
            kind, code = (
                "invalid_request_error",
                _REFUSAL_CODES.get(int(refusal.group(1)), "upstream_refused"),
            )
        else:
            text, kind, code = f"The {self._label} failed.", "upstream_error", "bad_gateway"
        event = {"error": {"message": text, "type": kind, "code": code, "param": None}}
        return b"data: " + orjson.dumps(event) + line[len(content) :]


_REFUSAL: Final = re.compile(r"(4\d\d): (.*)", re.DOTALL)


def refusal_message(body: bytes | None) -> tuple[str | None, str | None]:
    """The words of a devkit refusal, and the body field it names (a validation error)."""
    if not body:
        return None, None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(value, Mapping):
        return None, None
    error = value.get("error")
    if isinstance(error, Mapping):  # already OpenAI-shaped (the devkit's OpenAI endpoints)
        message = error.get("message")
        return (_short(message) if isinstance(message, str) else None), None
    detail = value.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
        first = detail[0]
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        field = ".".join(location) or None
        what = first.get("msg")
        if isinstance(what, str):
            text = f"{field}: {what}" if field else what
            if len(detail) > 1:
                text += f" (and {len(detail) - 1} more)"
            return _short(text), field
    if isinstance(error, str):
        return _short(error), None
    if isinstance(detail, str):
        return _short(detail), None
    return None, None


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"
