"""Independent review of the webhook SSRF guard (issue 15, point 2): address forms a hostile job
submitter would try that the authors' table does not list, and names whose lookup answers such
addresses (the resolver is the event loop's, replaced here by one answering fixed addresses)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from fd2.jobs import ssrf
from fd2.jobs.settings import JobSettings, parse_allowed

DEFAULT = JobSettings()

EMBEDDING_PRIVATE = [
    "::7f00:1",  # IPv4-compatible ::127.0.0.1 (deprecated; the standard library calls it global)
    "::a9fe:a9fe",  # ::169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b:1::7f00:1",  # local-use NAT64 (RFC 8215) of 127.0.0.1
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "fec0::1",  # deprecated site-local
    "100::1",  # discard-only
]


@pytest.mark.parametrize("address", EMBEDDING_PRIVATE)
def test_ipv6_forms_that_reach_private_ipv4_or_reserved_space_are_refused(address: str) -> None:
    assert ssrf.forbidden(ipaddress.ip_address(address), DEFAULT)


@pytest.mark.parametrize("address", ["2002:808:808::1", "64:ff9b::808:808", "2a00:1450::1"])
def test_ipv6_forms_of_public_addresses_stay_allowed(address: str) -> None:
    assert not ssrf.forbidden(ipaddress.ip_address(address), DEFAULT)


def test_metadata_behind_6to4_stays_refused_under_all() -> None:
    allow_all, _ = parse_allowed("all")
    settings = JobSettings(webhook_allow_all=allow_all)
    assert ssrf.forbidden(ipaddress.ip_address("2002:a9fe:a9fe::"), settings)
    assert not ssrf.forbidden(ipaddress.ip_address("2002:a00:1::"), settings)


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """A name → addresses table the loop's getaddrinfo answers from (the system's resolver would
    need a DNS server of our own)."""
    table: dict[str, list[str]] = {}

    async def getaddrinfo(_self: Any, host: str, port: int, **_: Any) -> list[Any]:
        if host not in table:
            raise socket.gaierror("no such name")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port),
            )
            for a in table[host]
        ]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    yield table


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        ["::1"],
        ["fe80::1%eth0"],
        ["8.8.8.8", "10.0.0.5"],  # one bad address among good ones
        ["2002:7f00:1::"],
    ],
)
async def test_a_name_resolving_to_a_forbidden_address_is_refused(
    answers: dict[str, list[str]], addresses: list[str]
) -> None:
    answers["hooks.example"] = addresses
    with pytest.raises(ssrf.Refused, match="may not reach"):
        await ssrf.check("https://hooks.example/h", DEFAULT)


async def test_a_name_resolving_to_public_addresses_is_pinned_to_the_first(
    answers: dict[str, list[str]],
) -> None:
    answers["hooks.example"] = ["93.184.216.34", "2606:2800:220:1::1"]
    target = await ssrf.check("https://hooks.example:8443/h", DEFAULT)
    assert (target.host, target.port, target.address) == ("hooks.example", 8443, "93.184.216.34")


async def test_a_name_that_does_not_resolve_is_refused(answers: dict[str, list[str]]) -> None:
    with pytest.raises(ssrf.Refused, match="does not resolve"):
        await ssrf.check("https://nowhere.example/h", DEFAULT)


@pytest.mark.parametrize(
    "url",
    [
        "https://0177.0.0.1/hook",  # octal
        "https://0x7f000001/hook",  # hex
        "https://127.1/hook",  # short form
        "https://017700000001/hook",  # octal as one number
        "https://[::ffff:7f00:1]/hook",
        "https://[::127.0.0.1]/hook",
        "https://[0:0:0:0:0:ffff:a9fe:a9fe]/hook",
        "https://169.254.169.254./hook",
    ],
)
async def test_numeric_spellings_of_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(ssrf.Refused):
        await ssrf.check(url, DEFAULT)


@pytest.mark.parametrize(
    "url",
    [
        "HTTP://example.com/",  # scheme case does not slip past the https rule
        "http://8.8.8.8/",
        "https://@8.8.8.8/",  # an empty user is still a user part
        "https://:pw@8.8.8.8/",
        "//8.8.8.8/",
        "javascript:alert(1)",
    ],
)
def test_malformed_or_plain_http_urls_are_refused(url: str) -> None:
    with pytest.raises(ssrf.Refused):
        ssrf.parse(url, DEFAULT)
