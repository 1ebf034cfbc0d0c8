"""The SSRF guard: which addresses a forwarder may reach, checked on resolved addresses."""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from forwarders.base import PermanentFailure, SendContext, send_raw
from relay.delivery.http import HttpRequest, HttpResponse, MockTransport
from relay.delivery.netguard import (
    AddressRefused,
    GuardedResolver,
    check_literal,
    forbidden_kind,
    parse_networks,
    refusal,
)
from relay.errors import ConfigError
from relay.settings import build_settings


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("172.16.3.4", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("100.64.0.1", "a non-public address"),
        ("fec0::1", "a site-local address"),
        ("feff:ffff::1", "a site-local address"),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("172.32.0.1", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address: str, kind: str | None) -> None:
    """Loopback, private, link-local, unspecified, multicast and metadata addresses are forbidden;
    public ones are not."""
    assert forbidden_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("address", "allow", "refused"),
    [
        ("127.0.0.1", [], True),
        ("127.0.0.1", ["127.0.0.0/8"], False),
        ("10.1.2.3", ["10.1.0.0/16"], False),
        ("10.2.0.1", ["10.1.0.0/16"], True),
        ("::ffff:127.0.0.1", ["127.0.0.0/8"], False),
        ("::1", ["127.0.0.0/8"], True),
        ("169.254.169.254", ["169.254.169.254/32"], False),
        ("8.8.8.8", [], False),
    ],
)
def test_allow_networks_let_listed_addresses_through(
    address: str, allow: list[str], refused: bool
) -> None:
    """An address inside a network of the allow-list is used even if it is forbidden."""
    reason = refusal(ipaddress.ip_address(address), parse_networks(allow))
    assert (reason is not None) == refused


def test_refusal_names_the_address_and_the_setting() -> None:
    """The error says which address, what kind, and how to allow it."""
    with pytest.raises(AddressRefused) as caught:
        check_literal("10.0.0.5", [])
    assert str(caught.value) == (
        "refused: 10.0.0.5 is a private address; allow it with security.allow_networks"
    )


def test_literal_ip_hosts_are_checked() -> None:
    """A URL host that is a forbidden IP literal is refused; names and public IPs pass."""
    with pytest.raises(AddressRefused, match=r"refused: ::1 is a loopback address"):
        check_literal("[::1]", [])
    check_literal("example.com", [])
    check_literal("8.8.8.8", [])
    check_literal("127.0.0.1", parse_networks(["127.0.0.1/32"]))


class StubResolver(AbstractResolver):
    """Answers every name with fixed addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The fixed addresses, as aiohttp's resolvers give them."""
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        """Nothing to close."""


async def test_a_name_resolving_to_a_forbidden_address_is_refused() -> None:
    """DNS answering a metadata address (rebinding) is refused, with the name and address."""
    resolver = GuardedResolver([], StubResolver("169.254.169.254"))
    with pytest.raises(AddressRefused) as caught:
        await resolver.resolve("hooks.example.com", 80)
    assert str(caught.value) == (
        "refused: hooks.example.com resolves to 169.254.169.254, a cloud metadata address; "
        "allow it with security.allow_networks"
    )


async def test_only_allowed_addresses_of_a_name_are_used() -> None:
    """Of a name's addresses, forbidden ones are dropped and the public ones kept."""
    resolver = GuardedResolver([], StubResolver("10.0.0.7", "93.184.216.34"))
    hosts = await resolver.resolve("mixed.example.com", 443)
    assert [h["host"] for h in hosts] == ["93.184.216.34"]


async def test_the_allow_list_lets_a_resolved_private_address_through() -> None:
    """A name resolving into an allowed network is connected to."""
    resolver = GuardedResolver(parse_networks(["10.0.0.0/8"]), StubResolver("10.0.0.7"))
    hosts = await resolver.resolve("internal.example.com", 443)
    assert [h["host"] for h in hosts] == ["10.0.0.7"]


async def test_a_refused_address_is_a_permanent_failure() -> None:
    """A send the guard refuses is dead at once (retrying meets the same refusal)."""

    def refuse(_: HttpRequest) -> HttpResponse:
        raise AddressRefused("refused: 10.0.0.5 is a private address; allow it with x")

    context = SendContext(
        delivery_id="d1",
        attempt=1,
        transport=MockTransport(refuse),
        timeout=1.0,
        now=datetime.now(UTC),
    )
    with pytest.raises(PermanentFailure, match=r"^refused: 10\.0\.0\.5 is a private address"):
        await send_raw(HttpRequest("POST", "http://10.0.0.5/hook"), context)


def test_allow_networks_setting_is_validated() -> None:
    """`security.allow_networks` takes CIDRs; a bad one is a config error naming it."""
    settings = build_settings({"security": {"allow_networks": ["127.0.0.0/8", "fd00::/8"]}})
    assert [str(n) for n in settings.security.networks()] == ["127.0.0.0/8", "fd00::/8"]
    with pytest.raises(ConfigError) as caught:
        build_settings({"security": {"allow_networks": ["10.0.0.300/8"]}})
    assert caught.value.details[0]["field"] == "security.allow_networks"
    assert "10.0.0.300" in caught.value.details[0]["message"]
