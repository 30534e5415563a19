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
TIMESTAMP_FORMAT: Final = "%Y%m%dT%H%M%SZ"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SigV4Signer:
    """Signs requests for one set of credentials and region. Its repr names the region only."""

    __slots__ = ("_auth", "_clock", "_request_class", "_token", "region")

    def __init__(
        self,
        *,
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
        self.region = region

    def __repr__(self) -> str:
        return f"SigV4Signer(service={SERVICE!r}, region={self.region!r})"

    def sign(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> list[tuple[str, str]]:
        """The headers to add to a request for `url` carrying `headers` (all of which are
        signed, with the URL's host) and `body`: `x-amz-date`, the session token if any, and
        `authorization`. The URL's path must be sent exactly as given."""
        request = self._request_class(method=method, url=url, data=body or b"", headers=None)
        for name, value in headers:
            request.headers[name] = value
        stamp = self._clock().astimezone(UTC).strftime(TIMESTAMP_FORMAT)
        request.context["timestamp"] = stamp
        request.headers["X-Amz-Date"] = stamp
        added = [("x-amz-date", stamp)]
        if self._token is not None:
            request.headers["X-Amz-Security-Token"] = self._token
            added.append(("x-amz-security-token", self._token))
        auth = self._auth
        canonical = auth.canonical_request(request)
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        signed_headers = auth.signed_headers(auth.headers_to_sign(request))
        added.append(
            (
                "authorization",
                f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, "
                f"SignedHeaders={signed_headers}, Signature={signature}",
            )
        )
        return added
