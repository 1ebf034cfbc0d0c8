"""The SSRF guard reads hosts as inet_aton does and looks inside IPv6 for IPv4 addresses.

Only the guard's functions are called here: nothing is sent anywhere.
"""

from __future__ import annotations

import ipaddress

import pytest

from relay.delivery.netguard import (
    AddressRefused,
    check_literal,
    embedded_ipv4,
    forbidden_kind,
    host_address,
    inet_aton,
    noncanonical,
    parse_networks,
    refusal,
)
from relay.errors import ConfigError
from relay.settings import build_settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.01", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("167772165", "10.0.0.5"),
        ("10.5", "10.0.0.5"),
        ("169.254.43518", "169.254.169.254"),
        ("127.0.0.1.", "127.0.0.1"),
        ("255.255.255.255", "255.255.255.255"),
        ("4294967295", "255.255.255.255"),
    ],
)
def test_hosts_are_read_as_inet_aton_reads_them(text: str, address: str) -> None:
    """Every legacy IPv4 spelling means the address the C library would connect to."""
    assert inet_aton(text) == ipaddress.IPv4Address(address)
    assert host_address(text) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize(
    "text",
    ["1.2.3.256", "4294967296", "1.16777216", "08", "0x7g.1", "1.2.3.4.5", "1..2", "-1", ""],
)
def test_what_inet_aton_refuses_is_no_address(text: str) -> None:
    """Numbers out of range, bad digits and too many parts are no IPv4 address."""
    assert inet_aton(text) is None


@pytest.mark.parametrize("host", ["1.2.3.256", "08.1", "0x7g.0x1", "1.2.3.4.5"])
def test_a_numeric_host_that_is_no_address_is_refused(host: str) -> None:
    """A host that ends in a number is never a name: when it is no address, it is refused."""
    with pytest.raises(ValueError, match="not a valid IPv4 address"):
        host_address(host)
    with pytest.raises(AddressRefused, match=r"^refused: .* is not a valid address"):
        check_literal(host, [])


@pytest.mark.parametrize("host", ["example.com", "1.example.com", "0x7f.example", "relay-1"])
def test_names_are_left_to_the_resolver(host: str) -> None:
    """A host whose last label is not a number is a name; the resolver judges it."""
    assert host_address(host) is None
    check_literal(host, [])


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0177.0.0.1", "0", "0x7f.1", "167772165", "134744072"]
)
def test_disguised_numeric_hosts_are_refused_even_when_allowed(host: str) -> None:
    """A non-canonical spelling is refused whatever it stands for (8.8.8.8 included) and
    whatever the allow-list says: it only exists to get past filters."""
    assert noncanonical(host) == str(inet_aton(host))
    allow_all = parse_networks(["0.0.0.0/0"])
    with pytest.raises(AddressRefused, match=r"spelled in a disguised form"):
        check_literal(host, allow_all)


def test_canonical_hosts_are_not_disguised() -> None:
    """Dotted quads, IPv6 literals and names are written as they should be."""
    assert noncanonical("10.0.0.5") is None
    assert noncanonical("[::1]") is None
    assert noncanonical("example.com") is None


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("64:ff9b::127.0.0.1", "127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("2002:7f00:1::", "127.0.0.1"),
        ("2002:a9fe:a9fe:1::5", "169.254.169.254"),
        ("::127.0.0.1", "127.0.0.1"),
        ("::ffff:0:127.0.0.1", "127.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
    ],
)
def test_ipv4_inside_ipv6_is_found(address: str, inner: str) -> None:
    """NAT64, 6to4, IPv4-compatible, -translated and -mapped addresses carry an IPv4 one."""
    assert ipaddress.IPv4Address(inner) in embedded_ipv4(ipaddress.IPv6Address(address))


def test_both_ends_of_teredo_are_found() -> None:
    """A Teredo address carries its server and (obfuscated) client IPv4 address."""
    found = embedded_ipv4(ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:3fff:fdd2"))
    assert found == [ipaddress.IPv4Address("65.54.227.120"), ipaddress.IPv4Address("192.0.2.45")]


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("[64:ff9b::127.0.0.1]", "a loopback address"),
        ("[64:ff9b::a9fe:a9fe]", "a cloud metadata address"),
        ("[2002:7f00:1::]", "a loopback address"),
        ("[::127.0.0.1]", "a loopback address"),
        ("[::ffff:0:127.0.0.1]", "a loopback address"),
        ("[::ffff:0:10.1.2.3]", "a private address"),
        ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "a loopback address"),
        ("[64:ff9b:1::808:808]", "a non-public address"),
    ],
)
def test_ipv4_hidden_in_ipv6_is_judged_like_plain_ipv4(host: str, kind: str) -> None:
    """An IPv6 literal carrying a forbidden IPv4 address is refused as that address."""
    with pytest.raises(AddressRefused) as caught:
        check_literal(host, [])
    assert kind in str(caught.value)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])
def test_ipv6_carrying_a_public_ipv4_address_passes(address: str) -> None:
    """NAT64 and 6to4 to a public address stay usable."""
    assert forbidden_kind(ipaddress.IPv6Address(address)) is None


def test_allowing_the_inner_ipv4_network_allows_the_ipv6_form() -> None:
    """With 127.0.0.0/8 allowed, its NAT64 and 6to4 forms are allowed too; others are not."""
    allow = parse_networks(["127.0.0.0/8"])
    assert refusal(ipaddress.ip_address("64:ff9b::127.0.0.1"), allow) is None
    assert refusal(ipaddress.ip_address("2002:7f00:1::"), allow) is None
    assert refusal(ipaddress.ip_address("64:ff9b::10.0.0.1"), allow) is not None
    teredo = ipaddress.ip_address("2001:0:4136:e378:8000:63bf:80ff:fffe")  # client 127.0.0.1
    assert refusal(teredo, parse_networks(["127.0.0.0/8", "65.54.227.120/32"])) is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://2130706433:9000/hook", "write 127.0.0.1"),
        ("http://user:pw@127.1/hook", "write 127.0.0.1"),
        ("https://0x7f.1/hook", "write 127.0.0.1"),
        ("http://1.2.3.256/hook", "not a valid address"),
    ],
)
def test_disguised_hosts_are_refused_at_config_load(url: str, message: str) -> None:
    """A forwarder URL with a non-canonical numeric host is a config error naming the field."""
    forwarder = {"type": "webhook", "name": "hook", "url": url, "secret": SECRET}
    with pytest.raises(ConfigError) as caught:
        build_settings({"forwarders": [forwarder]})
    detail = caught.value.details[0]
    assert detail["field"] == "forwarders[0].url"
    assert message in detail["message"]
    assert "pw" not in detail["message"]


def test_canonical_hosts_load() -> None:
    """Dotted quads, IPv6 literals and names load as before."""
    for url in ("http://127.0.0.1:9/h", "http://[::1]:9/h", "https://hooks.example.com/h"):
        forwarder = {"type": "webhook", "name": "hook", "url": url, "secret": SECRET}
        assert build_settings({"forwarders": [forwarder]}).forwarders[0].name == "hook"
