"""The job machinery's settings, taken once from fd2's settings (`--jobs-*`, `--webhook-*`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fd2.config import Settings
from fd2.serving.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    workers: int = 4
    project_concurrency: int = 8
    visibility_timeout_s: float = 60.0
    max_attempts: int = 3
    ttl_s: float = 86400.0
    retention_s: float = 604800.0
    batch_max_requests: int = 50000
    max_file_bytes: int = 10 * 1024 * 1024
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 5.0
    webhook_backoff_cap_s: float = 3600.0
    webhook_timeout_s: float = 10.0
    webhook_allow_all: bool = False
    webhook_allowed_networks: tuple[Network, ...] = ()
    webhook_allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> JobSettings:
        allow_all, networks = parse_allowed(settings.webhook_allow_private)
        return cls(
            workers=settings.jobs_workers,
            project_concurrency=settings.jobs_project_concurrency,
            visibility_timeout_s=settings.jobs_visibility_timeout,
            max_attempts=settings.jobs_max_attempts,
            ttl_s=settings.jobs_ttl,
            retention_s=settings.jobs_retention,
            batch_max_requests=settings.batch_max_requests,
            max_file_bytes=settings.max_body_bytes,
            webhook_max_attempts=settings.webhook_max_attempts,
            webhook_backoff_s=settings.webhook_backoff,
            webhook_timeout_s=settings.webhook_timeout,
            webhook_allow_all=allow_all,
            webhook_allowed_networks=networks,
            webhook_allow_http=settings.webhook_allow_http,
        )


def parse_allowed(text: str | None) -> tuple[bool, tuple[Network, ...]]:
    """`--webhook-allow-private`: `all`, or comma-separated CIDRs."""
    if not text:
        return False, ()
    if text.strip().lower() == "all":
        return True, ()
    networks = []
    for part in text.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"--webhook-allow-private: {part.strip()!r} is not a CIDR") from None
    return False, tuple(networks)
