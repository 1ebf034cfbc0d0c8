"""Which peers' X-Forwarded-* headers relay believes (relay/api/scalingo.py)."""

from __future__ import annotations

import pytest

from relay.api.scalingo import trusted_peer
from relay.settings import ServerSettings


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("fe80::1%eth0", False),
        ("192.0.2.7", False),
        ("", False),
        (None, False),
        ("not-an-ip", False),
    ],
)
def test_loopback_is_trusted_by_default(peer: str | None, trusted: bool) -> None:
    """By default only loopback peers are proxies whose headers count."""
    assert trusted_peer(peer, ServerSettings()) is trusted


def test_configured_networks() -> None:
    """server.trusted_proxies replaces the default: loopback is then not trusted."""
    server = ServerSettings(trusted_proxies=["10.0.0.0/8"])
    assert trusted_peer("10.1.2.3", server) and not trusted_peer("127.0.0.1", server)


def test_a_bad_cidr_is_a_config_error() -> None:
    """A value that is no network is refused when the settings load."""
    with pytest.raises(ValueError, match="trusted_proxies"):
        ServerSettings(trusted_proxies=["10.0.0.0/33"])
