"""AWS Signature Version 4 for Bedrock calls, computed by botocore's own signer.

fd2 writes no crypto: botocore's `SigV4Auth` makes the canonical request, the string to sign and
the HMAC chain. The only thing done here is what `SigV4Auth.add_auth` does around those steps
(the date header, the session token header, the Authorization line), so the clock can be given:
a signature depends on the second it was made, and tests recompute one at a fixed time.
botocore is imported when a Bedrock provider is built, never by deployments without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final

SERVICE: Final = "bedrock"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def amz_date(now: datetime) -> str:
    """`20261129T190005Z` (formatted by hand: strftime costs more than the rest of a call)."""
    d = now.astimezone(UTC)
    return f"{d.year:04d}{d.month:02d}{d.day:02d}T{d.hour:02d}{d.minute:02d}{d.second:02d}Z"


class SigV4Signer:
    """Signs requests to one endpoint for one set of credentials and region. Its repr names the
    endpoint and region only."""

    __slots__ = (
        "_auth",
        "_clock",
        "_host",
        "_request_class",
        "_signed",
        "_token",
        "endpoint",
        "region",
    )

    def __init__(
        self,
        *,
        endpoint: str,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None,
        region: str,
        clock: Clock = utc_now,
    ) -> None:
        # Imported here: only a module whose provider is Bedrock pays for botocore (no stubs).
        from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
        from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
        from botocore.credentials import Credentials  # type: ignore[import-untyped]

        self._auth = SigV4Auth(
            Credentials(access_key_id, secret_access_key, session_token or None), SERVICE, region
        )
        self._request_class = AWSRequest
        self._token = session_token or None
        self._clock = clock
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        # The Host value botocore derives from the endpoint (default ports left out), once: given
        # as a header, botocore does not parse the URL again on every request.
        template = AWSRequest(method="POST", url=self.endpoint + "/", headers={})
        self._host: str = self._auth.headers_to_sign(template)["host"]
        self._signed: dict[tuple[str, ...], str] = {}
        """Header names -> botocore's SignedHeaders list for them (the same for every call)."""

    def __repr__(self) -> str:
        return f"SigV4Signer(endpoint={self.endpoint!r}, region={self.region!r})"

    def sign(
        self, method: str, path: str, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> list[tuple[str, str]]:
        """The headers to add to a request for `endpoint + path` carrying `headers` (all of
        which are signed, with the host) and `body`: `x-amz-date`, the session token if any, and
        `authorization`. The path must be sent exactly as given."""
        request = self._request_class(
            method=method, url=self.endpoint + path, data=body or b"", headers=None
        )
        for name, value in headers:
            request.headers[name] = value
        stamp = amz_date(self._clock())
        request.context["timestamp"] = stamp
        request.headers["host"] = self._host
        request.headers["X-Amz-Date"] = stamp
        added = [("x-amz-date", stamp)]
        if self._token is not None:
            request.headers["X-Amz-Security-Token"] = self._token
            added.append(("x-amz-security-token", self._token))
        auth = self._auth
        canonical = auth.canonical_request(request)
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        names = tuple(name for name, _ in headers)
        signed_headers = self._signed.get(names)
        if signed_headers is None:
            signed_headers = auth.signed_headers(auth.headers_to_sign(request))
            self._signed[names] = signed_headers
        added.append(
            (
                "authorization",
                f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, "
                f"SignedHeaders={signed_headers}, Signature={signature}",
            )
        )
        return added
