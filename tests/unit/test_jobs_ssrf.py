"""The webhook SSRF guard: which addresses are refused, and a delivery connects to the address
that was checked (no second lookup)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from fd2.jobs import ssrf
from fd2.jobs.settings import JobSettings, parse_allowed

DEFAULT = JobSettings()
REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.1.1",
    "169.254.169.254",
    "fd00:ec2::254",
    "fe80::1",
    "fc00::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "240.0.0.1",
    "255.255.255.255",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"]


@pytest.mark.parametrize("address", REFUSED)
def test_addresses_a_webhook_may_not_reach_are_refused(address: str) -> None:
    assert ssrf.forbidden(ipaddress.ip_address(address), DEFAULT)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not ssrf.forbidden(ipaddress.ip_address(address), DEFAULT)


def test_the_operator_may_open_private_networks_but_not_metadata_with_all() -> None:
    allow_all, _ = parse_allowed("all")
    settings = JobSettings(webhook_allow_all=allow_all)
    assert not ssrf.forbidden(ipaddress.ip_address("10.0.0.1"), settings)
    assert not ssrf.forbidden(ipaddress.ip_address("127.0.0.1"), settings)
    assert ssrf.forbidden(ipaddress.ip_address("169.254.169.254"), settings)
    assert ssrf.forbidden(ipaddress.ip_address("fd00:ec2::254"), settings)


def test_a_listed_network_opens_only_itself() -> None:
    _, networks = parse_allowed("10.1.0.0/16, 169.254.169.254/32")
    settings = JobSettings(webhook_allowed_networks=networks)
    assert not ssrf.forbidden(ipaddress.ip_address("10.1.2.3"), settings)
    assert ssrf.forbidden(ipaddress.ip_address("10.2.0.1"), settings)
    assert not ssrf.forbidden(ipaddress.ip_address("169.254.169.254"), settings)


def test_a_bad_cidr_is_a_config_error() -> None:
    with pytest.raises(Exception, match="not a CIDR"):
        parse_allowed("10.0.0.0/8,nonsense")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https:///nohost",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 2100,
    ],
)
def test_urls_of_the_wrong_form_are_refused(url: str) -> None:
    with pytest.raises(ssrf.Refused):
        ssrf.parse(url, DEFAULT)


def test_http_is_allowed_only_when_the_operator_says() -> None:
    assert ssrf.parse("http://example.com/x", JobSettings(webhook_allow_http=True)) == (
        "http",
        "example.com",
        80,
    )


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(ssrf.Refused, match="may not reach"):
        await ssrf.check("https://localhost/hook", DEFAULT)


async def test_a_public_literal_needs_no_lookup() -> None:
    target = await ssrf.check("https://8.8.8.8:8443/hook", DEFAULT)
    assert (target.host, target.port, target.address) == ("8.8.8.8", 8443, "8.8.8.8")


async def test_the_delivery_connects_to_the_checked_address_with_the_original_host() -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # `.invalid` never resolves (RFC 6761): only the pinned address can be reached.
    target = ssrf.Target(f"http://hooks.invalid:{port}/x", "hooks.invalid", port, "127.0.0.1")
    async with (
        server,
        ssrf.pinned_session(target, 5.0) as session,
        session.post(target.url, data=b"{}") as answer,
    ):
        assert answer.status == 204
    assert f"host: hooks.invalid:{port}".encode() in seen[0].lower()


async def test_the_pinned_resolver_answers_no_other_host() -> None:
    target = ssrf.Target("https://a.example/", "a.example", 443, "93.184.216.34")
    resolver = ssrf.PinnedResolver(target)
    with pytest.raises(OSError):
        await resolver.resolve("b.example", 443)
    (answer,) = await resolver.resolve("a.example", 443)
    assert answer["host"] == "93.184.216.34"


@pytest.mark.parametrize(
    "url",
    ["https://2130706433/hook", "https://0x7f.1/hook", "https://localhost./hook", "https://[::1]/"],
)
async def test_other_spellings_of_loopback_are_refused(url: str) -> None:
    # Checked on the addresses a name resolves to, whatever way the name is written.
    with pytest.raises(ssrf.Refused):
        await ssrf.check(url, DEFAULT)
