"""The effective client, scheme and host of a request: forwarded headers count only when
the peer is a trusted proxy."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from relay.api.forwarded import Origin, origin, trusted
from relay.delivery.netguard import parse_networks
from relay.errors import ConfigError
from relay.settings import ServerSettings, build_settings


class Connection:
    """What a request asks its transport: the peer's address."""

    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The peer address; nothing else is known."""
        return (self.peer, 40000) if name == "peername" else default


def request(peer: str, headers: list[tuple[str, str]]) -> web.Request:
    """A request from `peer` with `headers` (a Host header is added)."""
    transport = Connection(peer)
    return make_mocked_request(
        "GET",
        "/",
        headers=CIMultiDict([("Host", "relay.internal:8080"), *headers]),
        transport=transport,
    )


LOOPBACK = ServerSettings()


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    """A client on the Internet cannot choose its own address by sending X-Forwarded-For."""
    got = origin(request("203.0.113.9", [("X-Forwarded-For", "10.9.9.9")]), LOOPBACK)
    assert got == Origin("203.0.113.9", "http", "relay.internal:8080")


def test_a_trusted_proxy_names_the_client_scheme_and_host() -> None:
    """From loopback (trusted by default) X-Forwarded-For/-Proto/-Host are believed."""
    headers = [
        ("X-Forwarded-For", "198.51.100.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "relay.example.com"),
    ]
    got = origin(request("127.0.0.1", headers), LOOPBACK)
    assert got == Origin("198.51.100.7", "https", "relay.example.com", via_proxy=True)


def test_entries_a_client_wrote_itself_are_skipped() -> None:
    """The client is the nearest untrusted hop: a forged address further left is ignored."""
    settings = ServerSettings(trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"])
    xff = [("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1")]
    assert origin(request("127.0.0.1", xff), settings).client == "198.51.100.7"


def test_rfc_7239_forwarded_is_read() -> None:
    """`Forwarded: for=...;proto=...;host=...` works like the X-Forwarded-* headers."""
    headers = [("Forwarded", 'for="[2001:db8::5]:4711";proto=https;host=relay.example.com')]
    got = origin(request("::1", headers), LOOPBACK)
    assert got == Origin("2001:db8::5", "https", "relay.example.com", via_proxy=True)


@pytest.mark.parametrize(
    ("header", "value"),
    [("X-Forwarded-Proto", "javascript"), ("X-Forwarded-Host", "evil.example/path")],
)
def test_nonsense_scheme_or_host_falls_back_to_the_connections(header: str, value: str) -> None:
    """Only http/https and a plain host[:port] are taken from a proxy."""
    got = origin(request("127.0.0.1", [(header, value)]), LOOPBACK)
    assert (got.scheme, got.host) == ("http", "relay.internal:8080")


def test_no_proxy_is_trusted_when_the_list_is_empty() -> None:
    """`trusted_proxies = []` makes relay use the connection's own address always."""
    settings = ServerSettings(trusted_proxies=[])
    got = origin(request("127.0.0.1", [("X-Forwarded-For", "198.51.100.7")]), settings)
    assert got.client == "127.0.0.1"


def test_trust_is_by_network() -> None:
    """Trusted means inside a configured network; mapped IPv4 counts as IPv4."""
    nets = parse_networks(["10.0.0.0/8"])
    assert trusted("10.2.3.4", nets) and trusted("::ffff:10.2.3.4", nets)
    assert not trusted("11.0.0.1", nets) and not trusted("unknown", nets)


def test_trusted_proxies_are_validated() -> None:
    """A bad CIDR in server.trusted_proxies is a config error naming it."""
    with pytest.raises(ConfigError) as caught:
        build_settings({"server": {"trusted_proxies": ["10.0.0.300/8"]}})
    assert caught.value.details[0]["field"] == "server.trusted_proxies"
