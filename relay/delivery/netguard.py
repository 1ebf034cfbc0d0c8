"""SSRF guard: which addresses relay may connect to when it delivers an event.

A forwarder URL that points (directly or through DNS) at loopback, a private
network, link-local or a cloud metadata service could let whoever edits the
configuration, or controls a target's DNS, read internal services. The check is
made on the *resolved* address at connect time, so DNS rebinding cannot get
around it; `security.allow_networks` lists the networks that are allowed anyway.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services (AWS, AWS IPv6, Alibaba, AWS ECS task, Azure wire server).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "169.254.170.2",
        "168.63.129.16",
    )
)


class AddressRefused(OSError):
    """A target's address is not allowed by the SSRF guard (a permanent failure)."""


def parse_networks(values: Iterable[str]) -> list[Network]:
    """CIDRs (or single addresses) as networks; ValueError names a bad one."""
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values]


def forbidden_kind(address: Address) -> str | None:
    """Why `address` must not be contacted ("a private address"), None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
    checks = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        # Shared (100.64.0.0/10), reserved and documentation ranges.
        (not address.is_global, "a non-public address"),
    )
    return next((kind for hit, kind in checks if hit), None)


def refusal(address: Address, allow: Sequence[Network]) -> str | None:
    """What kind of forbidden address `address` is ("a private address"), or None when
    it may be used: public, or inside a network of the allow-list."""
    kind = forbidden_kind(address)
    if kind is None:
        return None
    candidates: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    if any(a in net for a in candidates for net in allow if a.version == net.version):
        return None
    return kind


def _refused(what: str) -> AddressRefused:
    return AddressRefused(f"refused: {what}; allow it with security.allow_networks")


def check_literal(host: str, allow: Sequence[Network]) -> None:
    """Raise AddressRefused when `host` is a literal IP address that is refused."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    kind = refusal(address, allow)
    if kind is not None:
        raise _refused(f"{address} is {kind}")


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and keeps only the addresses the guard allows."""

    def __init__(self, allow: Sequence[Network], inner: AbstractResolver | None = None) -> None:
        self._allow = list(allow)
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host`; raise AddressRefused when every address it has is refused."""
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            kind = refusal(ipaddress.ip_address(result["host"]), self._allow)
            if kind is None:
                allowed.append(result)
            else:
                refused.append(f"{result['host']}, {kind}")
        if not allowed and refused:
            raise _refused(f"{host.rstrip('.')} resolves to {refused[0]}")
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()
