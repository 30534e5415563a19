"""A logged-in hvac client for one Vault: logs in, knows when its token runs out, logs in again.

hvac is synchronous: every method here blocks and must run in a worker thread, never on the event
loop. A lock serialises callers so that one expired token causes one login, not one per thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions
import requests
import urllib3

from fd2.control.secrets import SecretResolver, is_secret_reference
from fd2.control.vault.settings import VaultSettings
from fd2.serving.errors import SecretError

_log = logging.getLogger("fd2.vault")
# Log in again once this share of a token's lifetime has passed, before Vault starts refusing it.
_RENEW_AT = 0.75
# A renewal granting less than this (the token is near its maximum TTL) is not worth keeping.
_MIN_RENEWED_S = 1.0


class VaultFailure(Exception):
    """Vault could not answer; `reason` is safe to show (no token, no secret). `retryable` is
    False for fd2's own configuration problems (a missing credential), which no retry mends."""

    def __init__(self, reason: str, *, missing: bool = False, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing
        self.retryable = retryable


class _Refused(VaultFailure):
    """Vault answered 403 to a read: the token is expired or revoked."""


class VaultSession:
    def __init__(
        self,
        settings: VaultSettings,
        credentials: SecretResolver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._client: hvac.Client | None = None
        self._renew_at: float | None = None
        self._renewable = False
        if not settings.verify:
            # Said once here, rather than by urllib3 on every call to this Vault.
            _log.warning("vault %s: TLS verification is OFF", settings.describe())
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)

    def read(self, mount: str, path: str) -> tuple[dict[str, Any], int]:
        """The data and version of KV v2 secret `path` under `mount`."""
        with self._lock:
            client = self._logged_in()
            try:
                return _read(client, mount, path)
            except _Refused:
                # Revoked or expired early: one fresh login, then Vault's answer stands.
                _log.info("vault %s refused the token; logging in again", self.settings.describe())
                self._drop_client()
                return _read(self._logged_in(), mount, path)

    def renewal_due(self) -> bool:
        """True once the token should be renewed (cheap: no lock, no call)."""
        return self._client is not None and (
            self._renew_at is not None and self._clock() >= self._renew_at
        )

    def keep_alive(self) -> None:
        """Renews the token (or logs in again) if it is due, so it never lapses between reads."""
        with self._lock:
            self._logged_in()

    def close(self) -> None:
        with self._lock:
            self._drop_client()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.adapter.close()
            self._client = None

    def _logged_in(self) -> hvac.Client:
        if self._client is not None and (self._renew_at is None or self._clock() < self._renew_at):
            return self._client
        if self._client is not None:
            lifetime = self._renew(self._client) if self._renewable else None
            if lifetime is not None:
                self._renew_at = self._clock() + lifetime * _RENEW_AT if lifetime > 0 else None
                return self._client
            self._drop_client()
        client = self._new_client()
        try:
            lifetime, self._renewable = self._login(client)
        except Exception:
            client.adapter.close()
            raise
        self._client = client
        self._renew_at = self._clock() + lifetime * _RENEW_AT if lifetime > 0 else None
        _log.info(
            "vault %s: logged in (token valid for %s)",
            self.settings.describe(),
            f"{lifetime:g}s" if lifetime > 0 else "ever",
        )
        return client

    def _new_client(self) -> hvac.Client:
        settings = self.settings
        verify: bool | str = settings.verify
        if settings.verify and settings.ca_bundle:
            verify = settings.ca_bundle
        cert = None
        if settings.client_cert:
            # One PEM file may hold both the certificate and its key.
            cert = (settings.client_cert, settings.client_key or settings.client_cert)
        return hvac.Client(
            url=settings.address,
            namespace=settings.namespace,
            verify=verify,
            cert=cert,
            timeout=max(1, math.ceil(settings.timeout_s)),  # hvac types it as whole seconds
        )

    def _renew(self, client: hvac.Client) -> float | None:
        """Extends the token's lease (renew-self); None when Vault refuses (log in again then)."""
        try:
            answer = client.auth.token.renew_self()
            lifetime = float(answer["auth"].get("lease_duration") or 0)
        except (hvac.exceptions.VaultError, requests.RequestException, KeyError, TypeError):
            _log.info("vault %s: token renewal refused; logging in again", self.settings.describe())
            return None
        if 0 < lifetime < _MIN_RENEWED_S:
            return None  # at its maximum TTL: a fresh login beats renewing every few moments
        _log.debug("vault %s: token renewed for %gs", self.settings.describe(), lifetime)
        return lifetime

    def _login(self, client: hvac.Client) -> tuple[float, bool]:
        """Authenticates `client`: the token's remaining lifetime in seconds (0: none), and
        whether it can be renewed."""
        settings = self.settings
        try:
            if settings.auth_method == "approle":
                answer = client.auth.approle.login(
                    role_id=self._credential(settings.role_id_ref, "role_id"),
                    secret_id=self._credential(settings.secret_id_ref, "secret_id"),
                    mount_point=settings.approle_mount,
                    use_token=True,
                )
                auth = answer["auth"]
                return float(auth.get("lease_duration") or 0), bool(auth.get("renewable"))
            # A static token: lookup-self checks it and tells its remaining lifetime. When it
            # cannot be renewed any more, logging in again rereads the reference (e.g. a file
            # that a Vault agent rewrites).
            client.token = self._credential(settings.token_ref, "token")
            data = client.auth.token.lookup_self()["data"]
            return float(data.get("ttl") or 0), bool(data.get("renewable"))
        except hvac.exceptions.VaultError as exc:
            raise VaultFailure(f"login refused ({_status_of(exc)})") from None
        except requests.RequestException as exc:
            raise VaultFailure(f"Vault is unreachable ({type(exc).__name__})") from None
        except (KeyError, TypeError, ValueError):
            raise VaultFailure("Vault's login answer has an unexpected shape") from None

    def _credential(self, reference: str | None, what: str) -> str:
        if not reference or not is_secret_reference(reference):
            raise VaultFailure(
                f"the vault {what} must be a secret reference (env:, file:, config:)",
                retryable=False,
            )
        if reference.startswith("vault:"):
            raise VaultFailure(f"the vault {what} cannot itself come from Vault", retryable=False)
        try:
            return self._credentials.resolve(reference).reveal()
        except SecretError as exc:
            raise VaultFailure(f"vault {what}: {exc.message}", retryable=False) from None


def _read(client: hvac.Client, mount: str, path: str) -> tuple[dict[str, Any], int]:
    try:
        answer = client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )
    except hvac.exceptions.Forbidden:
        raise _Refused("Vault refused the token (Forbidden)") from None
    except hvac.exceptions.InvalidPath:
        raise VaultFailure("no such secret in Vault (404)", missing=True) from None
    except hvac.exceptions.VaultError as exc:
        raise VaultFailure(f"Vault answered an error ({_status_of(exc)})") from None
    except requests.RequestException as exc:
        raise VaultFailure(f"Vault is unreachable ({type(exc).__name__})") from None
    try:
        data = answer["data"]["data"]
        version = int(answer["data"]["metadata"].get("version") or 0)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise VaultFailure("Vault's answer is not a KV v2 secret") from None
    if not isinstance(data, dict):
        raise VaultFailure("Vault's answer is not a KV v2 secret")
    return data, version


def _status_of(exc: hvac.exceptions.VaultError) -> str:
    # hvac's messages repeat Vault's error strings; its class (one per status) is enough and safe.
    return type(exc).__name__
