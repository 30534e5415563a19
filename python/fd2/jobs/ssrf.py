"""Where a webhook may be sent: the URL's host is resolved once, every address it resolves to
is checked, and the delivery connects to the address checked (no second lookup a DNS answer
could change in between), with the original name in Host and TLS SNI.

Refused unless the operator allows them (`--webhook-allow-private`): loopback, private,
link-local, shared (CGNAT), unspecified, reserved and multicast addresses. Cloud metadata
addresses are refused even with `all`; only a CIDR the operator lists explicitly opens them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from fd2.jobs.settings import JobSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA: Final = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# Prefixes whose last 32 bits are an IPv4 address reached through them: NAT64 (RFC 6052 and the
# local-use RFC 8215 prefix) and the deprecated IPv4-compatible form `::a.b.c.d`.
_EMBEDDED_V4: Final = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96")
)


class Refused(Exception):
    """A webhook URL fd2 will not call; the message says why (safe to show the caller)."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    address: str
    """The checked address the delivery connects to."""


def parse(url: str, settings: JobSettings) -> tuple[str, str, int]:
    """The URL's scheme, host and port, or Refused."""
    if len(url) > 2048:
        raise Refused("The webhook URL is longer than 2048 characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("The webhook URL is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and settings.webhook_allow_http):
        raise Refused("The webhook URL must use https.")
    if parts.username is not None or parts.password is not None:
        raise Refused("The webhook URL must not carry credentials.")
    host = parts.hostname
    if not host:
        raise Refused("The webhook URL has no host.")
    return scheme, host, port or (443 if scheme == "https" else 80)


def forbidden(address: Address, settings: JobSettings) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            # 6to4 (2002::/16) carries an IPv4 address a relay would reach: judged by it too.
            if forbidden(address.sixtofour, settings):
                return True
        elif any(address in network for network in _EMBEDDED_V4) and int(address) > 1:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    listed = any(address in network for network in settings.webhook_allowed_networks)
    if address in METADATA:
        return not listed
    # The standard library counts some reserved and deprecated ranges (::/8 beyond ::1,
    # fec0::/10 site-local, 240.0.0.0/4 aside) as global: refused here as the docs promise.
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_global and not (address.is_multicast or address.is_reserved or site_local):
        return False
    return not (listed or settings.webhook_allow_all)


async def check(url: str, settings: JobSettings) -> Target:
    """Resolve the URL's host once and check each address; the first is the one to use."""
    _, host, port = parse(url, settings)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise Refused("The webhook URL's host does not resolve.") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Refused("The webhook URL's host does not resolve.")
    for address in addresses:
        if forbidden(address, settings):
            raise Refused(
                "The webhook URL resolves to an address webhooks may not reach "
                "(loopback, private, link-local or metadata)."
            )
    return Target(url, host, port, str(addresses[0]))


class PinnedResolver(AbstractResolver):
    """Answers aiohttp's lookup of the target host with the address already checked."""

    def __init__(self, target: Target) -> None:
        self._target = target

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._target.host:
            raise OSError(f"no address for {host}")
        address = ipaddress.ip_address(self._target.address)
        return [
            {
                "hostname": host,
                "host": self._target.address,
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


def pinned_session(target: Target, timeout_s: float, **options: Any) -> aiohttp.ClientSession:
    """A one-delivery client that can only reach `target`'s checked address (no redirects are
    followed by the caller; no proxy variables or cookies)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=PinnedResolver(target), force_close=True),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        **options,
    )
