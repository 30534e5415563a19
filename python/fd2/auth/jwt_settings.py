"""JWT verifiers from `jwt_config` modules, resolved for one environment.

The algorithm, the key (a shared secret, a PEM public key or a JWKS URL), issuer, audience,
leeway and JWE settings all come from the module's config; an HS secret the module lacks is taken
from `environments.<env>.secrets.jwt_secret_key`, where APISIX-style manifests keep it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import aiohttp
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from fd2.auth.identity import DEFAULT_RATE_LIMIT_WINDOW, RATE_LIMIT_WINDOWS
from fd2.auth.jwe import JweDecrypter, content_key
from fd2.auth.jwks import JwksKeys
from fd2.auth.jwt_verifier import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, JwtVerifier
from fd2.control.manifests.compile import ModuleDeclaration, resolve_declaration
from fd2.control.manifests.placeholders import PlaceholderContext, resolve_value
from fd2.control.secrets import Secret, SecretResolver, is_secret_reference
from fd2.module import Timeouts
from fd2.serving.errors import ConfigError

_SECRET_FIELDS: Final = frozenset({"secret_key", "public_key"})


def placeholder_context(
    declaration: ModuleDeclaration,
    environment: str,
    secrets: SecretResolver,
    environ: Mapping[str, str],
) -> PlaceholderContext:
    """Placeholders of a declaration for one environment; reached references become Secrets."""

    def reached(value: str) -> Any:
        return secrets.resolve(value) if is_secret_reference(value) else value

    return PlaceholderContext(
        environments=declaration.environment_maps,
        environment=environment,
        environ=environ,
        on_reached_string=reached,
    )


class JwtVerifiers:
    """Builds verifiers; JWKS caches are shared by every route that names the same URL."""

    def __init__(
        self, *, secrets: SecretResolver, environ: Mapping[str, str], http: aiohttp.ClientSession
    ) -> None:
        self._secrets = secrets
        self._environ = environ
        self._http = http
        self._jwks: dict[str, JwksKeys] = {}

    def build(
        self, peer: ModuleDeclaration, environment: str, secrets: SecretResolver | None = None
    ) -> JwtVerifier:
        """`secrets`: the project's resolver for this environment (its Vault), else fd2's own."""
        secrets = secrets or self._secrets
        resolved = resolve_declaration(
            peer,
            environment,
            secrets=secrets,
            secret_fields=_SECRET_FIELDS,
            environ=self._environ,
            base_timeouts=Timeouts(),
        )
        config = resolved.config
        algorithm = str(config.get("algorithm") or "HS256")
        key: Any = None
        jwks = None
        if algorithm in HMAC_ALGORITHMS:
            secret = config.get("secret_key") or self._environment_secret(
                peer, environment, secrets
            )
            if not isinstance(secret, Secret) or not secret.reveal():
                raise ConfigError(f"jwt module {peer.module!r} has no secret_key for {algorithm}")
            key = secret.reveal().encode()
        elif algorithm in ASYMMETRIC_ALGORITHMS:
            pem = config.get("public_key")
            url = config.get("jwks_url")
            if isinstance(pem, Secret):
                try:
                    key = load_pem_public_key(pem.reveal().encode())
                except ValueError:
                    raise ConfigError(
                        f"jwt module {peer.module!r}: public_key is not a PEM key"
                    ) from None
            elif isinstance(url, str) and url:
                jwks = self._jwks.get(url)
                if jwks is None:
                    jwks = self._jwks[url] = JwksKeys(url, self._http)
            else:
                raise ConfigError(
                    f"jwt module {peer.module!r} needs public_key or jwks_url for {algorithm}"
                )
        else:
            raise ConfigError(
                f"jwt module {peer.module!r}: algorithm {algorithm!r} is not supported"
            )
        return JwtVerifier(
            algorithm=algorithm,
            key=key,
            jwks=jwks,
            issuer=config.get("issuer") or None,
            audience=config.get("audience") or None,
            leeway_s=_leeway(config.get("leeway_seconds", 10)),
            jwe=self._jwe(config.get("jwe_config"), secrets),
        )

    def _environment_secret(
        self, peer: ModuleDeclaration, environment: str, secrets: SecretResolver
    ) -> Secret | None:
        # APISIX-style manifests keep the secret where the gateway's jwt-auth consumer reads it.
        context = placeholder_context(peer, environment, secrets, self._environ)
        entry = context.environment_entry(environment)
        stored = entry.get("secrets") if isinstance(entry, dict) else None
        value = stored.get("jwt_secret_key") if isinstance(stored, dict) else None
        return self._as_secret(resolve_value(value, context, "secrets.jwt_secret_key"), secrets)

    def _jwe(self, raw: Any, secrets: SecretResolver) -> JweDecrypter | None:
        if not isinstance(raw, dict) or not raw.get("enabled"):
            return None
        if raw.get("algorithm", "dir") != "dir" or raw.get("encryption", "A256GCM") != "A256GCM":
            raise ConfigError(
                "jwe_config: only algorithm 'dir' with encryption 'A256GCM' is supported"
            )
        secret = self._as_secret(raw.get("encryption_key"), secrets)
        if secret is None:
            raise ConfigError("jwe_config.encryption_key is missing")
        return JweDecrypter(content_key(secret.reveal()))

    def _as_secret(self, value: Any, secrets: SecretResolver) -> Secret | None:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str) and value:
            return secrets.resolve(value) if is_secret_reference(value) else Secret(value)
        return None


def rate_limit_window(peer: ModuleDeclaration, environment: str, environ: Mapping[str, str]) -> str:
    """The window of the `rate_limit` claim in tokens of this jwt_config module: its config's
    `rate_limit_window` (`second`, `minute` or `hour`), by default `hour`."""
    raw = (peer.entry.config or {}).get("rate_limit_window")
    context = PlaceholderContext(
        environments=peer.environment_maps, environment=environment, environ=environ
    )
    window = resolve_value(raw, context, "config.rate_limit_window")
    if window is None:
        return DEFAULT_RATE_LIMIT_WINDOW
    if not isinstance(window, str) or window not in RATE_LIMIT_WINDOWS:
        raise ConfigError(
            f"jwt module {peer.module!r}: rate_limit_window must be one of "
            f"{', '.join(RATE_LIMIT_WINDOWS)}"
        )
    return window


def _leeway(value: Any) -> float:
    try:
        leeway = float(value)
    except (TypeError, ValueError):
        raise ConfigError("jwt_config.leeway_seconds must be a number") from None
    if not 0 <= leeway <= 300:
        raise ConfigError("jwt_config.leeway_seconds must be between 0 and 300")
    return leeway
