"""The Control Tower's HTTP API: `GET /manifests/{project_id}`, done carefully.

Pooled connections, TLS verified by default (optionally against a CA bundle), connect/read
timeouts, bounded retries with jittered exponential backoff for what may pass (transport errors,
5xx, 429), and `If-None-Match` when the Control Tower gave an ETag. The client secret comes from a
secret reference and is sent as `X-DSPAI-Client-Secret`.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from urllib.parse import quote

import httpx
import msgspec

from fd2.control.manifests.decode import ManifestError
from fd2.control.manifests.models import ProjectManifest
from fd2.control.secrets import Secret
from fd2.serving.errors import ConfigError

# Straight from the answer's bytes to the typed, validated manifest: one pass, no dict between.
_decode_manifest = msgspec.json.Decoder(ProjectManifest)
_BACKOFF_BASE_S = 0.1
_BACKOFF_CAP_S = 2.0
PROBE_PROJECT = "fd2-readiness-probe"


class ControlTowerUnavailable(Exception):
    """The Control Tower gave no usable answer (unreachable, timeout, 5xx, 401, garbage)."""


class Answer(msgspec.Struct, frozen=True):
    """One manifest answer: `manifest` is None for 404; `not_modified` for a 304."""

    manifest: ProjectManifest | None
    etag: str | None = None
    not_modified: bool = False


class ControlTowerClient:
    def __init__(
        self,
        base_url: str,
        *,
        secret: Secret | None,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        retries: int = 2,
        ca_bundle: str | None = None,
    ) -> None:
        headers = {"accept": "application/json", "user-agent": "fd2"}
        if secret is not None:
            headers["x-dspai-client-secret"] = secret.reveal()
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            # verify=True uses certifi's bundle; a CA bundle replaces it (host names are checked
            # either way). Plain http:// URLs are for loopback tests and sidecars.
            verify=_tls_context(ca_bundle) if ca_bundle else True,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            trust_env=False,
        )

    async def fetch(self, project: str, *, etag: str | None = None) -> Answer:
        """The project's manifest, decoded and validated (None when the Control Tower has none).

        Raises `ControlTowerUnavailable` when there is no usable answer, and `ManifestError`
        (naming the field) when the answer is JSON but not a valid project manifest."""
        headers = {"if-none-match": etag} if etag else None
        url = f"/manifests/{quote(project, safe='')}"
        attempt = 0
        while True:
            try:
                response = await self._http.get(url, headers=headers)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
                retryable = True
            else:
                if response.status_code == 200:
                    return _manifest_answer(response, project)
                if response.status_code == 304 and etag:
                    return Answer(None, etag=etag, not_modified=True)
                if response.status_code == 404:
                    return Answer(None)
                problem = f"HTTP {response.status_code}"
                retryable = response.status_code >= 500 or response.status_code == 429
            if not retryable or attempt >= self._retries:
                raise ControlTowerUnavailable(problem)
            # Full jitter: replicas that failed together do not retry together.
            ceiling = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)
            await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 (jitter, not crypto)
            attempt += 1

    async def probe(self) -> bool:
        """One cheap question, for readiness: does the Control Tower answer and accept us?

        A project id that no one uses: 404 is as good an answer as 200.
        """
        try:
            response = await self._http.get(f"/manifests/{PROBE_PROJECT}")
        except httpx.HTTPError:
            return False
        return response.status_code in (200, 404)

    async def aclose(self) -> None:
        await self._http.aclose()


def _tls_context(ca_bundle: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"--control-tower-ca {ca_bundle}: cannot be loaded ({type(exc).__name__})"
        ) from None


def _manifest_answer(response: httpx.Response, project: str) -> Answer:
    try:
        manifest = _decode_manifest.decode(response.content)
    except msgspec.ValidationError as exc:  # JSON, but not a manifest fd2 can serve
        raise ManifestError(f"control-tower:{project}: {exc}") from None
    except msgspec.DecodeError:
        raise ControlTowerUnavailable("the answer is not JSON") from None
    return Answer(manifest, etag=response.headers.get("etag"))
